"""Prepares a MinIO for media with its root user: the recordings bucket, a policy limited to that
bucket, and media's own user holding only that policy (compose's `minio-init`, the dev cluster's
bucket job). Media then runs with its own keys, never MinIO's root credentials.

    MINIO_ROOT_USER=… MINIO_ROOT_PASSWORD=… python -m tcxhooks.media.minio_setup -c tcxhooks.ini

The bucket, endpoint and media's keys are read from `[recordings]` as media reads them. Running it
again changes nothing (an existing bucket, policy, user and attachment are kept as they are; the
user's secret is set again to the configured one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import urllib3
from minio import Minio
from minio.credentials.providers import StaticProvider
from minio.error import MinioAdminException, S3Error
from minio.minioadmin import MinioAdmin

from tcxhooks.platform.config import ConfigError, load_config
from tcxhooks.platform.configfile import add_config_option, find_config

from .config import MediaSettings, RecordingsConfig

POLICY = "tcxhooks-media"
# What media does with its bucket (storage.py): check and create it, set its lifecycle rule, and
# put, stat, presign (a read), stream and delete objects.
BUCKET_ACTIONS = [
    "s3:GetBucketLocation",
    "s3:ListBucket",
    "s3:CreateBucket",
    "s3:GetLifecycleConfiguration",
    "s3:PutLifecycleConfiguration",
]
OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]


def media_policy(bucket: str) -> dict[str, Any]:
    """An IAM policy allowing media's operations on its own bucket and nothing else."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": BUCKET_ACTIONS, "Resource": [f"arn:aws:s3:::{bucket}"]},
            {"Effect": "Allow", "Action": OBJECT_ACTIONS, "Resource": [f"arn:aws:s3:::{bucket}/*"]},
        ],
    }


def provision(config: RecordingsConfig, root_user: str, root_password: str) -> None:
    """Bucket, policy, media's user and the policy's attachment to it, with the root credentials."""
    if not (config.s3_access_key and config.s3_secret_key):
        raise ValueError("[recordings] s3_access_key and s3_secret_key name media's own MinIO user: set both")
    if config.s3_access_key == root_user:
        raise ValueError("[recordings] s3_access_key is MinIO's root user: give media a user of its own")
    s3 = Minio(config.s3_endpoint, root_user, root_password, secure=config.s3_secure, region=config.s3_region)
    if not s3.bucket_exists(config.s3_bucket):
        s3.make_bucket(config.s3_bucket, location=config.s3_region)
    admin = MinioAdmin(
        endpoint=config.s3_endpoint,
        credentials=StaticProvider(root_user, root_password),
        region=config.s3_region,
        secure=config.s3_secure,
    )
    admin.policy_add(POLICY, policy=media_policy(config.s3_bucket))
    admin.user_add(config.s3_access_key, config.s3_secret_key)
    try:
        admin.attach_policy([POLICY], user=config.s3_access_key)
    except MinioAdminException as exc:
        if "already" not in str(exc).lower():  # attached by an earlier run
            raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tcxhooks.media.minio_setup", description="Prepare MinIO for media: its bucket and its own user."
    )
    add_config_option(parser)
    args = parser.parse_args(argv)
    root_user, root_password = os.environ.get("MINIO_ROOT_USER", ""), os.environ.get("MINIO_ROOT_PASSWORD", "")
    try:
        if not (root_user and root_password):
            raise ValueError("MINIO_ROOT_USER and MINIO_ROOT_PASSWORD (MinIO's root credentials) must be set")
        config = load_config(find_config(args.config), (MediaSettings,))[MediaSettings].recordings
    except (ConfigError, ValueError) as exc:
        print(f"minio setup: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        provision(config, root_user, root_password)
    except ValueError as exc:
        print(f"minio setup: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except (S3Error, MinioAdminException, urllib3.exceptions.HTTPError, OSError) as exc:  # MinIO not up yet?
        print(f"minio setup: {config.s3_endpoint}: {str(exc).splitlines()[0][:300]}", file=sys.stderr)
        raise SystemExit(1) from None
    print(
        f"bucket {config.s3_bucket} ready; media's user may use it and nothing else "
        f"(policy {POLICY}: {json.dumps(BUCKET_ACTIONS + OBJECT_ACTIONS)})"
    )


if __name__ == "__main__":
    main()
