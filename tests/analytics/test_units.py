"""Pure functions of the analytics service: TextRank, getRecognition parsing, transcript rendering."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tcxhooks.analytics.jobstore import MIGRATIONS, AudioRef, JobStore
from tcxhooks.analytics.textrank import sentences, summarize
from tcxhooks.analytics.transcript import MONO, Segment, render_text
from tcxhooks.analytics.yandex.stt import parse_results
from tcxhooks.platform.jobqueue import process_owner
from tcxhooks.platform.store import open_store
from tcxhooks.v1 import events_pb2

RU = (
    "Добрый день, компания Ромашка, меня зовут Анна. Я хотел бы узнать статус моего заказа. "
    "Назовите, пожалуйста, номер заказа. Номер заказа сто двадцать три. "
    "Курьер привезёт заказ завтра после обеда. Можно ли перенести доставку заказа на пятницу? "
    "Да, я перенесу доставку заказа на пятницу. Спасибо, до свидания."
)
EN = (
    "Hello, this is John from the sales department. I am calling about your order number forty two. "
    "The delivery of your order is scheduled for Monday morning. Please confirm your address for the delivery. "
    "The weather is nice today. Thank you and goodbye."
)


def test_textrank_keeps_central_sentences_in_order() -> None:
    ru = summarize(RU, count=3)
    assert len(sentences(ru)) == 3
    assert "заказ" in ru and "Спасибо, до свидания." not in ru
    en = summarize(EN, count=2)
    assert sentences(en) == [s for s in sentences(EN) if s in en]
    assert "weather" not in en and "order" in en


def test_textrank_short_text_is_returned_whole_and_empty_stays_empty() -> None:
    assert summarize("One sentence only.") == "One sentence only."
    assert summarize("") == ""


def test_get_recognition_prefers_refinement_and_groups_channels() -> None:
    body = "\n".join(
        [
            '{"result": {"channelTag": "0", "audioCursors": {"finalIndex": "0"}, "final": {"alternatives": '
            '[{"text": "hello there", "startTimeMs": "100", "endTimeMs": "900"}]}}}',
            '{"result": {"channelTag": "1", "audioCursors": {"finalIndex": "0"}, "final": {"alternatives": '
            '[{"text": "hi", "startTimeMs": "1000", "endTimeMs": "1500", "languages": '
            '[{"languageCode": "en-US", "probability": 0.9}]}]}}}',
            '{"result": {"channelTag": "0", "finalRefinement": {"finalIndex": "0", "normalizedText": '
            '{"alternatives": [{"text": "Hello there."}]}}}}',
            '{"result": {"channelTag": "0", "statusCode": {"codeType": "CLOSED"}}}',
        ]
    )
    segments, languages = parse_results(body, stereo=False)
    assert sorted(segments, key=lambda s: s.start) == [Segment(0, 0.1, 0.9, "Hello there."), Segment(1, 1.0, 1.5, "hi")]
    assert languages == ["en-US"]
    assert render_text(segments, ("operator", "client")) == "operator: Hello there.\nclient: hi"


def test_mono_text_has_no_speaker_prefix() -> None:
    assert render_text([Segment(MONO, 2, 3, "b"), Segment(MONO, 0, 1, " a ")], ("operator", "client")) == "a\nb"


async def test_jobstore_claims_once_and_purges_only_old_published_jobs(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        jobs = JobStore(store, owner=process_owner("host/a"))
        await jobs.migrate()
        audio = [AudioRef(1, 3.0, 1)]
        assert await jobs.submit("1_1-1", "1_1", audio, "offline")
        assert not await jobs.submit("1_1-1", "1_1", audio, "offline")
        [job] = await jobs.claim(5, lease=60)
        assert job.call_id == "1_1-1" and job.audio == audio and job.running
        assert (await jobs.count_by_state())["running"] == 1
        assert await JobStore(store, owner=process_owner("host/b")).claim(5, lease=60) == []  # leased to host/a
        restarted = JobStore(store, owner=process_owner("host/a"))
        assert await restarted.queue.take_back() == 1
        [job] = await restarted.claim(5, lease=60)
        jobs = restarted
        await jobs.finish(job, events_pb2.AnalyticsReady(call_id="1_1-1", text="hi"))
        assert (await jobs.get("1_1-1")).result.text == "hi"  # type: ignore[union-attr]
        assert await jobs.purge(time.time() + 10) == 0  # not yet published: kept
        await jobs.mark_published("1_1-1")
        assert await jobs.purge(time.time() - 3600) == 0  # younger than the retention
        assert await jobs.purge(time.time() + 10) == 1
        assert await jobs.get("1_1-1") is None
    finally:
        await store.close()


def test_offline_model_is_rebuilt_when_the_cached_file_is_corrupt(tmp_path: Path) -> None:
    offline = pytest.importorskip("tcxhooks.analytics.offline", reason="the offline extra is not installed")
    (tmp_path / "model.bin").write_bytes(b"not a model")
    folder = offline.assemble_model(tmp_path)
    assert offline._sha256(folder / "model.bin") == offline.MODEL_SHA256
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.json"]


async def test_jobs_stored_with_links_name_their_files_in_order(tmp_path: Path) -> None:
    """A job submitted before analytics read its audio from media kept links: file 1, 2, … in order."""
    store = await open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        await store.migrate("analytics", MIGRATIONS[:1])
        await store.execute(
            "INSERT INTO analytics_jobs (call_id, chain, audio, backend, state, owner, lease_until, created_at,"
            " updated_at, next_at) VALUES (?, ?, ?, 'yandex', 'running', 'host/old', ?, 1, 1, 1)",
            (
                "1_1-1",
                "1_1",
                '[{"url": "https://m/r/1_1-1/1.mp3?sig=a", "duration": 2.0, "channels": 2},'
                ' {"url": "https://m/r/1_1-1/2.mp3?sig=b", "duration": 1.0, "channels": 2}]',
                time.time() + 3600,
            ),
        )
        jobs = JobStore(store, owner=process_owner("host/new"))
        await jobs.migrate()
        [job] = await jobs.claim(5, lease=60)  # "running" under the old lease column: queued again
        assert job.audio == [AudioRef(1, 2.0, 2), AudioRef(2, 1.0, 2)]
    finally:
        await store.close()
