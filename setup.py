"""Build hook: generate the gRPC stubs from proto/ before the package is built.

The stubs are never committed (see docs in README, "Development"); every build or
editable install regenerates them with the pinned grpcio-tools.
"""

from __future__ import annotations

import glob
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def generate_stubs() -> None:
    import grpc_tools
    from grpc_tools import protoc

    out_dir = os.path.join(HERE, "src")
    target = os.path.join(out_dir, "tcxhooks", "v1")
    for old in glob.glob(os.path.join(target, "*_pb2*.py*")):
        os.remove(old)
    protos = sorted(glob.glob(os.path.join(HERE, "proto", "tcxhooks", "v1", "*.proto")))
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{os.path.join(HERE, 'proto')}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on " + " ".join(protos))


class BuildWithStubs(build_py):
    def run(self) -> None:
        generate_stubs()
        super().run()


setup(cmdclass={"build_py": BuildWithStubs})
