"""Where mp3 objects live, behind one interface: a local folder or S3/MinIO (minio client).

storage = make_storage(config.recordings)
await storage.setup()                       # folder / bucket (+ lifecycle rule) exists
await storage.put(key, body, size, {"call-id": ..., "leg": ...})
target = await storage.resolve(key)         # Redirect(presigned url) or LocalFile(path)
async for chunk in storage.read(key): ...   # the object's bytes (ObjectMissing: not there)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import urllib3

from .config import RecordingsConfig
from .errors import ObjectMissing, StorageError

CONTENT_TYPE = "audio/mpeg"
PRESIGN_SECONDS = 900  # a redirect target lives 15 minutes; the stable link lives the retention
READ_CHUNK = 256 * 1024
_NETWORK = (OSError, urllib3.exceptions.HTTPError)  # minio lets urllib3's errors through
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,400}")


@dataclass(frozen=True)
class Redirect:
    url: str


@dataclass(frozen=True)
class LocalFile:
    path: Path


class Storage(Protocol):
    kind: str

    async def setup(self) -> None: ...
    async def put(self, key: str, body: IO[bytes], size: int, metadata: dict[str, str]) -> None: ...
    async def delete(self, key: str) -> None: ...
    async def resolve(self, key: str) -> Redirect | LocalFile | None: ...
    def read(self, key: str) -> AsyncIterator[bytes]: ...
    async def ping(self) -> None: ...


async def read_chunks(path: Path, size: int) -> AsyncIterator[bytes]:
    """A file's bytes, `size` at a time, read in a thread (OSError as it comes)."""
    handle = await asyncio.to_thread(open, path, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, size):
            yield chunk
    finally:
        handle.close()


def check_key(key: str) -> str:
    if not _KEY.fullmatch(key) or ".." in key:
        raise StorageError(f"invalid object key {key!r}")
    return key


class LocalStorage:
    """Objects as files under `local_dir`; written to a temp file, fsynced, then renamed."""

    kind = "local"

    def __init__(self, folder: str) -> None:
        self.root = Path(folder).resolve()

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def setup(self) -> None:
        try:
            await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.root}: {exc.strerror}") from exc

    async def put(self, key: str, body: IO[bytes], size: int, metadata: dict[str, str]) -> None:
        target = self.path(key)

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    body.seek(0)
                    shutil.copyfileobj(body, handle, 1024 * 1024)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror}") from exc

    async def delete(self, key: str) -> None:
        target = self.path(key)

        def remove() -> None:
            target.unlink(missing_ok=True)
            parent = target.parent
            if parent != self.root and not any(parent.iterdir()):
                parent.rmdir()

        try:
            await asyncio.to_thread(remove)
        except OSError as exc:
            raise StorageError(f"cannot delete {target}: {exc.strerror}") from exc

    async def resolve(self, key: str) -> LocalFile | None:
        path = self.path(key)
        return LocalFile(path) if await asyncio.to_thread(path.is_file) else None

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in read_chunks(self.path(key), READ_CHUNK):
                yield chunk
        except FileNotFoundError:
            raise ObjectMissing(f"{key} is not stored") from None
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc.strerror}") from exc

    async def ping(self) -> None:
        if not await asyncio.to_thread(os.access, self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")


class S3Storage:
    """Objects in an S3 bucket (MinIO in production); the minio client is synchronous, so it runs in threads."""

    kind = "s3"

    def __init__(self, config: RecordingsConfig) -> None:
        from minio import Minio
        from minio.helpers import check_bucket_name

        try:
            check_bucket_name(config.s3_bucket)
        except ValueError:
            raise ValueError(
                f"[recordings] s3_bucket = {config.s3_bucket!r}: expected an S3 bucket name "
                "(3-63 lower-case letters, digits, dots or hyphens)"
            ) from None

        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # our StorageError says it once
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            maxsize=16,
            retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self.client = Minio(
            config.s3_endpoint,
            access_key=config.s3_access_key,
            secret_key=config.s3_secret_key,
            secure=config.s3_secure,
            region=config.s3_region,
            http_client=http,
        )
        # Presigned URLs are followed by CRMs, which may reach S3 under another name than media does
        # (compose/k8s: `minio:9000` inside, an ingress outside). Presigning is local (the region is
        # set), so this client never connects anywhere.
        self.presigner = (
            self.client
            if not config.s3_public_endpoint
            else Minio(
                config.s3_public_endpoint,
                access_key=config.s3_access_key,
                secret_key=config.s3_secret_key,
                secure=config.s3_secure,
                region=config.s3_region,
            )
        )
        self.bucket = config.s3_bucket
        self.region = config.s3_region
        self.retention_days = config.retention_days

    async def _call(self, what: str, fn: object, *args: object, **kwargs: object) -> object:
        from minio.error import MinioException

        try:
            return await asyncio.to_thread(fn, *args, **kwargs)  # type: ignore[arg-type]
        except (MinioException, ValueError, *_NETWORK) as exc:
            raise StorageError(f"S3 {what} failed: {_short(exc)}") from exc

    async def setup(self) -> None:
        from minio.commonconfig import ENABLED, Filter
        from minio.error import S3Error
        from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule

        if not await self._call("bucket check", self.client.bucket_exists, self.bucket):
            try:
                await asyncio.to_thread(self.client.make_bucket, self.bucket, self.region)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise StorageError(f"S3 bucket creation failed: {_short(exc)}") from exc
            except _NETWORK as exc:
                raise StorageError(f"S3 bucket creation failed: {_short(exc)}") from exc
        # Second line of retention: the bucket expires objects a day after the nightly purge should have.
        rule = Rule(
            ENABLED,
            rule_filter=Filter(prefix=""),
            rule_id="tcxhooks-retention",
            expiration=Expiration(days=self.retention_days + 1),
        )
        await self._call("lifecycle rule", self.client.set_bucket_lifecycle, self.bucket, LifecycleConfig([rule]))

    async def put(self, key: str, body: IO[bytes], size: int, metadata: dict[str, str]) -> None:
        try:
            await self._upload(key, body, size, metadata)
        except StorageError as exc:
            if "NoSuchBucket" not in str(exc):
                raise
            await self.setup()  # the bucket was removed (a reset MinIO): create it again, once
            await self._upload(key, body, size, metadata)

    async def _upload(self, key: str, body: IO[bytes], size: int, metadata: dict[str, str]) -> None:
        body.seek(0)
        await self._call(
            "upload",
            self.client.put_object,
            self.bucket,
            check_key(key),
            body,
            size,
            content_type=CONTENT_TYPE,
            metadata=metadata,
        )

    async def delete(self, key: str) -> None:
        await self._call("delete", self.client.remove_object, self.bucket, check_key(key))

    async def _exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            await asyncio.to_thread(self.client.stat_object, self.bucket, check_key(key))
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                return False
            raise StorageError(f"S3 stat failed: {_short(exc)}") from exc
        except _NETWORK as exc:
            raise StorageError(f"S3 stat failed: {_short(exc)}") from exc

    async def resolve(self, key: str) -> Redirect | None:
        if not await self._exists(key):
            return None
        url = await self._call(
            "presign",
            self.presigner.presigned_get_object,
            self.bucket,
            check_key(key),
            expires=dt.timedelta(seconds=PRESIGN_SECONDS),
        )
        return Redirect(str(url))

    async def read(self, key: str) -> AsyncIterator[bytes]:
        from minio.error import S3Error

        try:
            response = await asyncio.to_thread(self.client.get_object, self.bucket, check_key(key))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NoSuchBucket"):
                raise ObjectMissing(f"{key} is not stored") from None
            raise StorageError(f"S3 download failed: {_short(exc)}") from exc
        except _NETWORK as exc:
            raise StorageError(f"S3 download failed: {_short(exc)}") from exc
        try:
            while chunk := await asyncio.to_thread(response.read, READ_CHUNK):
                yield chunk
        except _NETWORK as exc:
            raise StorageError(f"S3 download failed: {_short(exc)}") from exc
        finally:
            response.close()
            response.release_conn()

    async def ping(self) -> None:
        if not await self._call("bucket check", self.client.bucket_exists, self.bucket):
            raise StorageError(f"S3 bucket {self.bucket} does not exist")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def make_storage(config: RecordingsConfig) -> Storage:
    if config.storage == "s3":
        return S3Storage(config)
    return LocalStorage(config.local_dir)
