"""Reading a leg's mp3 from media over gRPC (`MediaService.FetchAudio`, a stream of chunks).

    audio = MediaAudio(app.channel("media"))
    size = await audio.download(call_id, file=1, dest=path)    # AnalyticsError when it cannot

Analytics never follows a URL: it names the leg and the file, and media streams the stored mp3
(from its folder or its bucket), so analytics needs no route to the public links or to S3.
"""

from __future__ import annotations

import os
from pathlib import Path

import grpc

from tcxhooks.platform.retry import rpc_error
from tcxhooks.v1 import media_service_pb2, media_service_pb2_grpc

from .errors import permanent, transient

MAX_AUDIO_BYTES = 512 * 1024 * 1024
TIMEOUT = 600.0
_PERMANENT = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)


class MediaAudio:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = media_service_pb2_grpc.MediaServiceStub(channel)

    async def download(self, call_id: str, file: int, dest: Path) -> int:
        """Streams file `file` of the leg into `dest`; returns its size. Errors are classified."""
        what = f"recording file {file} of {call_id}"
        call = self.stub.FetchAudio(media_service_pb2.FetchAudioRequest(call_id=call_id, file=file), timeout=TIMEOUT)
        size = 0
        try:
            with open(dest, "wb") as handle:
                async for reply in call:
                    size += len(reply.chunk)
                    if size > MAX_AUDIO_BYTES:
                        raise permanent(f"{what} is larger than {MAX_AUDIO_BYTES} bytes", "audio_too_large")
                    handle.write(reply.chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except grpc.aio.AioRpcError as exc:
            message = f"media FetchAudio of {what} failed: {rpc_error(exc)}"
            if exc.code() in _PERMANENT:
                raise permanent(message, "audio_missing") from None
            raise transient(message, "audio_unavailable") from None
        finally:
            call.cancel()
        if size == 0:
            raise permanent(f"{what} is empty", "audio_empty")
        return size
