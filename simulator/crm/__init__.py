"""Stand-ins for the CRMs tcxhooks talks to, built from their public documentation (`tcxhooks fakecrm NAME`).

Each fake serves its CRM's API with the documented answers, error bodies and request limits, records
every call it receives (`GET /fake/calls`), and lets a test or a demo steer it under `/fake/`.
"""
