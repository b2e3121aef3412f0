# syntax=docker/dockerfile:1.7@sha256:a57df69d0ea827fb7266491f2813635de6f17269be881f696fbfdf2d83dda33e
# One image for the four services; the command picks the service:
#   docker run IMAGE dispatcher -c /etc/tcxhooks/tcxhooks.ini
# Build: docker build -t tcxhooks .     (offline analytics: --build-arg EXTRAS=offline)
# The base image by digest: a tag can be moved, a digest cannot (bump both together).
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# --- wheel: builds the tcxhooks wheel (setup.py generates the gRPC stubs with the pinned
# grpcio-tools of [build-system]) and every dependency as a wheel, so the final stage needs
# no compiler and no network.
FROM ${PYTHON_IMAGE} AS wheel
ARG EXTRAS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY proto/ proto/
COPY src/ src/
COPY services/ services/
COPY simulator/ simulator/
RUN pip wheel --wheel-dir /wheels ".${EXTRAS:+[$EXTRAS]}"

# --- runtime: the installed wheel, ffmpeg from the imageio-ffmpeg wheel, a non-root user.
FROM ${PYTHON_IMAGE} AS runtime
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TCXH_CONFIG=/etc/tcxhooks/tcxhooks.ini
RUN groupadd --system --gid 10001 tcxhooks \
 && useradd --system --uid 10001 --gid tcxhooks --home-dir /var/lib/tcxhooks --create-home \
      --shell /usr/sbin/nologin tcxhooks \
 && mkdir -p /etc/tcxhooks
RUN --mount=type=bind,from=wheel,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels "tcxhooks${EXTRAS:+[$EXTRAS]}" \
 && python -c "import imageio_ffmpeg, tcxhooks.v1.events_pb2; print('ffmpeg', imageio_ffmpeg.get_ffmpeg_exe())" \
 && tcxhooks --version
WORKDIR /var/lib/tcxhooks
USER 10001:10001
# gRPC: monitor 50051, dispatcher 50052, media 50053, analytics 50054; media's links 8480; /metrics 9464;
# gRPC health alone in plaintext 9470 (when [services] health_port is set, as in Kubernetes).
EXPOSE 50051 50052 50053 50054 8480 9464 9470
# Ready (grpc.health.v1, service "") on the service this container runs (`tcxhooks health`: on its
# plaintext [services] health_port when set, else on its gRPC port with the configured TLS), read from
# the same config the service reads (TCXH_CONFIG + TCXH_* overrides).
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 CMD ["tcxhooks", "health"]
ENTRYPOINT ["tcxhooks"]
CMD ["up"]
