"""Test-only fakes: external services (Yandex SpeechKit, MinIO) and the gRPC peers a service's tests run it
against. The fake CRMs are shipped with the product (simulator/crm/, `tcxhooks fakecrm`)."""
