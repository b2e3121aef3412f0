"""Generated gRPC/protobuf stubs of the tcxhooks.v1 contracts (built from proto/, never edited)."""
