# syntax=docker/dockerfile:1.7
# One image for the four services; the command picks the service:
#   docker run IMAGE dispatcher -c /etc/tcxhooks/tcxhooks.ini
# Build: docker build -t tcxhooks .     (offline analytics: --build-arg EXTRAS=offline)
ARG PYTHON_IMAGE=python:3.11-slim

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
# gRPC: monitor 50051, dispatcher 50052, media 50053, analytics 50054; media's links 8480; /metrics 9464.
EXPOSE 50051 50052 50053 50054 8480 9464
# Ready (grpc.health.v1, service "") on the gRPC port of whichever service this container runs,
# read from the same config the service reads (TCXH_CONFIG + TCXH_* overrides). os._exit: a gRPC
# client can hang at interpreter exit with channels left open (grpc/grpc#5084, #29560).
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,grpc;from grpc_health.v1 import health_pb2 as h,health_pb2_grpc as g;from tcxhooks.platform.config import load_config;from tcxhooks.platform.settings import PlatformSettings as P;from tcxhooks.product import SERVICES;s=load_config(os.environ.get('TCXH_CONFIG'),(P,))[P].services;f=[g.HealthStub(grpc.insecure_channel('127.0.0.1:'+s.address(n).rpartition(':')[2])).Check.future(h.HealthCheckRequest(),timeout=4) for n in SERVICES];os._exit(0 if any(x.exception() is None and x.result().status==h.HealthCheckResponse.SERVING for x in f) else 1)"]
ENTRYPOINT ["tcxhooks"]
CMD ["up"]
