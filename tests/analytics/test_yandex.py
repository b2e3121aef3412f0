"""The `yandex` backend end to end: real analytics process, fake Yandex, recording dispatcher."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import subprocess
import time
from pathlib import Path

import grpc
import httpx
import pytest

from tcxhooks.v1 import analytics_service_pb2 as pb
from tests.fakes.analytics_peers import FakeMedia, RecordingDispatcher
from tests.fakes.yandex import FakeYandex, Phrase
from tests.helpers.net import free_port
from tests.helpers.postgres import postgres_schema
from tests.helpers.services import kill9, read_config, stop, tcxhooks_command, wait_until, write_config

from .conftest import Audio, StartService, yandex_settings

TRANSCRIPT = {
    "0": [
        Phrase(
            0, 2600, "hello this is anna from the sales department", "Hello, this is Anna from the sales department."
        ),
        Phrase(6100, 8900, "your order will be delivered on monday morning"),
    ],
    "1": [
        Phrase(3200, 5600, "hi anna i am calling about my order", "Hi Anna, I am calling about my order."),
        Phrase(9500, 11200, "thank you monday works for me", "Thank you, Monday works for me."),
    ],
}
EXPECTED_TEXT = (
    "operator: Hello, this is Anna from the sales department.\n"
    "client: Hi Anna, I am calling about my order.\n"
    "operator: your order will be delivered on monday morning\n"
    "client: Thank you, Monday works for me."
)
CALL = "261125213000_7-1"


def test_transcript_and_summary_arrive_with_documented_requests(
    fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    fake.transcript = TRANSCRIPT
    service = analytics_service(yandex_settings(fake), log_level="debug")
    started = time.monotonic()
    reply = service.submit(CALL, short_audio)
    assert reply.job_id == CALL and not reply.duplicate
    assert service.submit(CALL, short_audio).duplicate

    event = dispatcher.wait_for(f"{CALL}/analytics")
    elapsed = dispatcher.received_at[f"{CALL}/analytics"] - started
    print(f"yandex (fake): submit → analytics event in {elapsed:.2f}s")
    assert event.chain == "261125213000_7"
    assert event.WhichOneof("payload") == "analytics"
    ready = event.analytics
    assert ready.call_id == CALL
    assert ready.text == EXPECTED_TEXT
    assert ready.summary == fake.gpt_text
    assert ready.language == "en-US" and ready.backend == "yandex"
    assert [(s.channel, s.start_seconds, s.end_seconds) for s in ready.segments] == [
        ("operator", 0.0, 2.6),
        ("client", 3.2, 5.6),
        ("operator", 6.1, 8.9),
        ("client", 9.5, 11.2),
    ]

    # recognizeFileAsync: once, the served mp3 inline, the documented recognitionModel shape and auth headers
    [submit] = fake.requests_to("/stt/v3/recognizeFileAsync")
    body = submit.json
    assert base64.b64decode(body["content"]) == short_audio.path.read_bytes()
    model = body["recognitionModel"]
    assert model["audioFormat"] == {"containerAudio": {"containerAudioType": "MP3"}}
    assert model["languageRestriction"] == {"restrictionType": "WHITELIST", "languageCode": ["en-US"]}
    assert model["model"] == "general"
    assert model["textNormalization"]["textNormalization"] == "TEXT_NORMALIZATION_ENABLED"
    for request in fake.requests:
        assert request.headers["authorization"] == f"Api-Key {fake.api_key}"
        assert request.headers["x-folder-id"] == fake.folder_id
        assert request.headers["x-client-request-id"]
    op_id = next(iter(fake.operations))
    polls = fake.requests_to(f"/operations/{op_id}")
    assert len(polls) == 2  # "still running", then done
    [results] = fake.requests_to("/stt/v3/getRecognition")
    assert results.query == {"operationId": op_id}
    assert fake.requests_to("/stt/v3/deleteRecognition", "DELETE")[0].query == {"operationId": op_id}

    [completion] = fake.requests_to("/foundationModels/v1/completion")
    gpt = completion.json
    assert gpt["modelUri"] == f"gpt://{fake.folder_id}/yandexgpt-lite/latest"
    assert gpt["completionOptions"]["stream"] is False
    assert 0 < gpt["completionOptions"]["temperature"] <= 0.3
    assert [m["role"] for m in gpt["messages"]] == ["system", "user"]
    assert "English" in gpt["messages"][0]["text"]
    assert gpt["messages"][1]["text"] == EXPECTED_TEXT

    job = service.stub.GetJob(pb.GetJobRequest(call_id=CALL), timeout=5)
    assert job.state == pb.JOB_STATE_DONE and job.result.text == EXPECTED_TEXT
    metrics_port = read_config(service.config)["metrics"]["port"]
    wait_until(lambda: 'tcxhooks_analytics_jobs{state="done"} 1.0' in _metrics(metrics_port), what="jobs gauge")
    metrics = _metrics(metrics_port)
    assert f'tcxhooks_analytics_audio_seconds_total{{backend="yandex"}} {short_audio.duration}' in metrics
    assert 'tcxhooks_analytics_backend_seconds_count{backend="yandex",operation="stt_submit"} 1.0' in metrics
    assert stop(service.proc) == 0
    log = service.log_text()
    assert "submitted recording to SpeechKit" in log and "analytics stopped" in log
    assert fake.api_key not in log
    assert "sig=abcdef" not in log


def _metrics(port: str) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


def test_bad_key_fails_once_without_retry(
    fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    service = analytics_service(yandex_settings(fake, api_key="wrong-key-9876543210"))
    service.submit(CALL, short_audio)
    event = dispatcher.wait_for(f"{CALL}/analytics")
    assert event.WhichOneof("payload") == "analytics_failed"
    error = event.analytics_failed.error
    assert "HTTP 401 UNAUTHENTICATED" in error and "recognizeFileAsync" in error
    assert len(fake.requests_to("/stt/v3/recognizeFileAsync")) == 1
    time.sleep(1.0)
    assert dispatcher.calls == 1
    job = service.stub.GetJob(pb.GetJobRequest(call_id=CALL), timeout=5)
    assert job.state == pb.JOB_STATE_FAILED and job.error == error
    assert "wrong-key-9876543210" not in service.log_text()


def test_quota_429_is_retried_then_succeeds(
    fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    fake.transcript = TRANSCRIPT
    fake.fail_next("/stt/v3/recognizeFileAsync", 429, times=1, retry_after="1")
    fake.fail_next("/foundationModels/v1/completion", 503, times=1)
    service = analytics_service(yandex_settings(fake))
    service.submit(CALL, short_audio)
    event = dispatcher.wait_for(f"{CALL}/analytics")
    assert event.WhichOneof("payload") == "analytics", event
    assert event.analytics.text == EXPECTED_TEXT and event.analytics.summary == fake.gpt_text
    assert len(fake.requests_to("/stt/v3/recognizeFileAsync")) == 2
    assert len(fake.operations) == 1
    assert len(fake.requests_to("/foundationModels/v1/completion")) == 2


def test_operation_error_internal_is_resubmitted_once(
    fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    fake.transcript = TRANSCRIPT
    fake.operation_errors = [{"code": 13, "message": "Internal error", "details": []}, None]
    service = analytics_service(yandex_settings(fake))
    service.submit(CALL, short_audio)
    event = dispatcher.wait_for(f"{CALL}/analytics")
    assert event.WhichOneof("payload") == "analytics"
    assert len(fake.requests_to("/stt/v3/recognizeFileAsync")) == 2


def test_operation_error_invalid_argument_fails(
    fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    fake.operation_errors = [{"code": 3, "message": "audio could not be decoded", "details": []}]
    service = analytics_service(yandex_settings(fake))
    service.submit(CALL, short_audio)
    event = dispatcher.wait_for(f"{CALL}/analytics")
    assert event.WhichOneof("payload") == "analytics_failed"
    op_id = next(iter(fake.operations))
    assert event.analytics_failed.error == (
        f"SpeechKit operation {op_id} failed with 3 INVALID_ARGUMENT: audio could not be decoded"
    )
    assert len(fake.requests_to("/stt/v3/recognizeFileAsync")) == 1
    assert not fake.requests_to("/foundationModels/v1/completion")


def test_deadline_fails_a_job_whose_operation_never_finishes(
    fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    fake.never_done = True
    service = analytics_service(yandex_settings(fake, deadline="4s"))
    service.submit(CALL, short_audio)
    event = dispatcher.wait_for(f"{CALL}/analytics", timeout=20)
    assert event.WhichOneof("payload") == "analytics_failed"
    op_id = next(iter(fake.operations))
    assert event.analytics_failed.error == (
        f"deadline of 4s exceeded (last stage: waiting for SpeechKit operation {op_id})"
    )
    assert len(fake.requests_to(f"/operations/{op_id}")) >= 1
    assert len(fake.requests_to("/stt/v3/recognizeFileAsync")) == 1  # polling, never resubmitting


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_job_survives_kill9_and_keeps_polling_the_stored_operation(
    store: str, fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    fake.transcript = TRANSCRIPT
    fake.never_done = True
    with contextlib.ExitStack() as stack:  # Postgres missing fails the test, as every Postgres test does
        store_url = stack.enter_context(postgres_schema("analytics_t")) if store == "postgres" else ""
        service = analytics_service(yandex_settings(fake), store_url=store_url)
        service.submit(CALL, short_audio)
        wait_until(lambda: len(fake.requests_to("/operations/")) >= 1, what="a first status poll")
        kill9(service.proc)
        fake.finish_all()
        restarted = analytics_service({}, reuse=service)
        event = dispatcher.wait_for(f"{CALL}/analytics")
        assert event.WhichOneof("payload") == "analytics"
        assert event.analytics.text == EXPECTED_TEXT
        assert len(fake.requests_to("/stt/v3/recognizeFileAsync")) == 1
        assert restarted.stub.GetJob(pb.GetJobRequest(call_id=CALL), timeout=5).state == pb.JOB_STATE_DONE
        stop(restarted.proc)


def test_by_default_speechkit_chooses_between_russian_and_english(
    fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    fake.transcript = TRANSCRIPT
    settings = yandex_settings(fake)
    del settings["language"]
    service = analytics_service(settings)
    service.submit(CALL, short_audio)
    ready = dispatcher.wait_for(f"{CALL}/analytics").analytics
    [submit] = fake.requests_to("/stt/v3/recognizeFileAsync")
    assert submit.json["recognitionModel"]["languageRestriction"] == {
        "restrictionType": "WHITELIST",
        "languageCode": ["ru-RU", "en-US"],
    }
    assert ready.language == "en-US"  # as SpeechKit reported it


def test_iam_token_auth_and_content_filter_falls_back_to_the_extractive_summary(
    fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    fake.transcript = TRANSCRIPT
    fake.gpt_status = "ALTERNATIVE_STATUS_CONTENT_FILTER"
    fake.iam_token = "t1.fake-iam-token-0123456789"
    service = analytics_service(yandex_settings(fake, api_key="", iam_token=fake.iam_token))
    service.submit(CALL, short_audio)
    ready = dispatcher.wait_for(f"{CALL}/analytics").analytics
    assert {r.headers["authorization"] for r in fake.requests} == {f"Bearer {fake.iam_token}"}
    assert fake.iam_token not in service.log_text()
    assert ready.summary and "cannot discuss" not in ready.summary
    phrases = [line.split(": ", 1)[1] for line in EXPECTED_TEXT.splitlines()]
    assert any(ready.summary == " ".join(chosen) for chosen in itertools.combinations(phrases, 3)), ready.summary


def test_iam_token_file_is_read_again_when_it_changes_and_a_refused_token_waits_for_it(
    fake: FakeYandex,
    dispatcher: RecordingDispatcher,
    analytics_service: StartService,
    short_audio: Audio,
    tmp_path: Path,
) -> None:
    fake.transcript = TRANSCRIPT
    expired, fresh = "t1.expired-iam-token-0123456789", "t1.fresh-iam-token-9876543210"
    fake.iam_token = fresh
    token_file = tmp_path / "iam-token"
    token_file.write_text(expired + "\n")
    service = analytics_service(yandex_settings(fake, api_key="", iam_token_file=str(token_file)))
    service.submit(CALL, short_audio)

    wait_until(
        lambda: "was refused (expired, and the file not refreshed yet?)" in service.log_text(),
        what="the refused token's retry",
    )
    assert service.stub.GetJob(pb.GetJobRequest(call_id=CALL), timeout=5).state != pb.JOB_STATE_FAILED
    token_file.write_text(fresh + "\n")  # what `yc iam create-token > FILE` does every hour

    assert dispatcher.wait_for(f"{CALL}/analytics").analytics.text == EXPECTED_TEXT
    used = [r.headers["authorization"] for r in fake.requests]
    assert used[0] == f"Bearer {expired}" and used[-1] == f"Bearer {fresh}"
    assert set(used) == {f"Bearer {expired}", f"Bearer {fresh}"}
    assert expired not in service.log_text() and fresh not in service.log_text()


def test_two_files_and_publish_retried_until_the_dispatcher_acknowledges(
    fake: FakeYandex,
    dispatcher: RecordingDispatcher,
    analytics_service: StartService,
    short_audio: Audio,
    media: FakeMedia,
) -> None:
    fake.transcript = {"0": [Phrase(0, 900, "hello", "Hello.")], "1": [Phrase(1200, 2000, "hi", "Hi.")]}
    dispatcher.reject_next = 2
    service = analytics_service(yandex_settings(fake))
    # two files for the leg (a mobile reconnect): transcripts are concatenated in order
    media.add(CALL, 1, short_audio.path)
    media.add(CALL, 2, short_audio.path)
    media.unavailable_next = 1  # media's storage answers a moment later: the read is retried
    sources = [pb.AudioSource(file=n, duration_seconds=short_audio.duration, channels=2) for n in (1, 2)]
    service.stub.Submit(pb.SubmitRequest(call_id=CALL, chain="261125213000_7", audio=sources), timeout=10)
    event = dispatcher.wait_for(f"{CALL}/analytics")
    assert event.WhichOneof("payload") == "analytics"
    assert dispatcher.calls == 3
    assert event.analytics.text == "operator: Hello.\nclient: Hi.\noperator: Hello.\nclient: Hi."
    starts = [s.start_seconds for s in event.analytics.segments]
    assert starts == [0.0, 1.2, round(short_audio.duration, 3), round(short_audio.duration + 1.2, 3)]
    assert len(fake.operations) == 2
    assert media.fetches == [(CALL, 1), (CALL, 1), (CALL, 2)]


def test_an_event_the_dispatcher_refuses_for_good_does_not_hold_back_the_next(
    fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    fake.transcript = {"0": [Phrase(0, 900, "hello", "Hello.")]}
    refused, next_call = CALL, "261125213001_8-0"
    dispatcher.refuse.add(f"{refused}/analytics")
    service = analytics_service(yandex_settings(fake))
    service.submit(refused, short_audio)
    wait_until(
        lambda: "dispatcher Publish refused: INVALID_ARGUMENT" in service.log_text(), what="the refusal in the log"
    )
    service.submit(next_call, short_audio)

    assert dispatcher.wait_for(f"{next_call}/analytics").analytics.text == "operator: Hello."
    assert f"{refused}/analytics" not in dispatcher.events
    job = service.stub.GetJob(pb.GetJobRequest(call_id=refused), timeout=5)
    assert job.state == pb.JOB_STATE_DONE and job.result.text == "operator: Hello."
    assert "tcxhooks_analytics_refused_total 1.0" in service.metrics()


def test_disabled_service_refuses_jobs(
    dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    service = analytics_service({"enabled": "false"})
    with pytest.raises(grpc.RpcError) as raised:
        service.submit(CALL, short_audio)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "analytics disabled" in raised.value.details()


def test_enabled_yandex_without_credentials_is_a_configuration_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, analytics={"enabled": "true", "backend": "yandex"})
    done = subprocess.run(tcxhooks_command("analytics", "-c", str(config)), capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "[analytics] api_key is missing" in done.stderr and "[analytics] folder_id is missing" in done.stderr


def test_bad_submissions_are_rejected(
    dispatcher: RecordingDispatcher, analytics_service: StartService, fake: FakeYandex
) -> None:
    service = analytics_service(yandex_settings(fake))
    cases = [
        pb.SubmitRequest(call_id="", audio=[pb.AudioSource(file=1)]),
        pb.SubmitRequest(call_id="1_1-1"),
        pb.SubmitRequest(call_id="1_1-1", audio=[pb.AudioSource(url="file:///etc/passwd")]),  # a URL is not read
        pb.SubmitRequest(call_id="1_1-1", audio=[pb.AudioSource(url="http://169.254.169.254/", file=0)]),
    ]
    for request in cases:
        with pytest.raises(grpc.RpcError) as raised:
            service.stub.Submit(request, timeout=5)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as raised:
        service.stub.GetJob(pb.GetJobRequest(call_id="nope"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert not fake.requests


def test_a_recording_media_does_not_have_fails_clearly(
    fake: FakeYandex, dispatcher: RecordingDispatcher, analytics_service: StartService, media: FakeMedia
) -> None:
    service = analytics_service(yandex_settings(fake))
    source = pb.AudioSource(file=1, duration_seconds=3, channels=1)
    service.stub.Submit(pb.SubmitRequest(call_id=CALL, chain="261125213000_7", audio=[source]), timeout=5)
    event = dispatcher.wait_for(f"{CALL}/analytics")
    assert event.analytics_failed.error == (
        f"media FetchAudio of recording file 1 of {CALL} failed: NOT_FOUND no stored file 1 for '{CALL}'"
    )
    assert media.fetches == [(CALL, 1)]
    assert not fake.requests


def test_fake_documents_shapes() -> None:
    """Guards the fake itself: getRecognition lines are `{"result": …}` objects with string int64s."""
    with FakeYandex() as fake:
        fake.transcript = {"0": [Phrase(0, 1000, "a b", "A b.")]}
        op = fake._results(type("Op", (), {"id": "x"})())  # type: ignore[arg-type]
        assert {k for o in op for k in o} >= {"final", "finalRefinement", "eouUpdate", "statusCode", "channelTag"}
        assert json.loads(json.dumps(op))[1]["final"]["alternatives"][0]["startTimeMs"] == "0"


def test_unreachable_yandex_is_retried_until_the_deadline(
    dispatcher: RecordingDispatcher, analytics_service: StartService, short_audio: Audio
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    settings = {
        "enabled": "true",
        "backend": "yandex",
        "api_key": "k-0123456789",
        "folder_id": "b1g",
        "stt_url": closed,
        "operation_url": closed,
        "llm_url": closed,
        "deadline": "3s",
    }
    service = analytics_service(settings)
    service.submit(CALL, short_audio)
    error = dispatcher.wait_for(f"{CALL}/analytics").analytics_failed.error
    assert error.startswith("SpeechKit recognizeFileAsync: network error ConnectError")
    assert error.endswith("(no time left before the 3s deadline)")
    job = service.stub.GetJob(pb.GetJobRequest(call_id=CALL), timeout=5)
    assert job.state == pb.JOB_STATE_FAILED and job.attempts >= 2
