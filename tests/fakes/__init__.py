"""Test-only fakes: a CRM endpoint that records every webhook, external services (Yandex SpeechKit, MinIO)
and the gRPC peers a service's tests run it against. The fake CRMs a user can run (`tcxhooks fakecrm`)
ship with the product in simulator/crm/."""
