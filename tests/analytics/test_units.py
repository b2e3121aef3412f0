"""Pure functions of the analytics service: TextRank, getRecognition parsing, transcript rendering."""
from __future__ import annotations

from tcxhooks.analytics.textrank import sentences, summarize
from tcxhooks.analytics.transcript import MONO, Segment, render_text
from tcxhooks.analytics.yandex.stt import parse_results

RU = ("Добрый день, компания Ромашка, меня зовут Анна. Я хотел бы узнать статус моего заказа. "
      "Назовите, пожалуйста, номер заказа. Номер заказа сто двадцать три. "
      "Курьер привезёт заказ завтра после обеда. Можно ли перенести доставку заказа на пятницу? "
      "Да, я перенесу доставку заказа на пятницу. Спасибо, до свидания.")
EN = ("Hello, this is John from the sales department. I am calling about your order number forty two. "
      "The delivery of your order is scheduled for Monday morning. Please confirm your address for the delivery. "
      "The weather is nice today. Thank you and goodbye.")


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
    body = "\n".join([
        '{"result": {"channelTag": "0", "audioCursors": {"finalIndex": "0"}, "final": {"alternatives": '
        '[{"text": "hello there", "startTimeMs": "100", "endTimeMs": "900"}]}}}',
        '{"result": {"channelTag": "1", "audioCursors": {"finalIndex": "0"}, "final": {"alternatives": '
        '[{"text": "hi", "startTimeMs": "1000", "endTimeMs": "1500", "languages": '
        '[{"languageCode": "en-US", "probability": 0.9}]}]}}}',
        '{"result": {"channelTag": "0", "finalRefinement": {"finalIndex": "0", "normalizedText": '
        '{"alternatives": [{"text": "Hello there."}]}}}}',
        '{"result": {"channelTag": "0", "statusCode": {"codeType": "CLOSED"}}}',
    ])
    segments, languages = parse_results(body, stereo=False)
    assert sorted(segments, key=lambda s: s.start) == [Segment(0, 0.1, 0.9, "Hello there."), Segment(1, 1.0, 1.5, "hi")]
    assert languages == ["en-US"]
    assert render_text(segments, ("operator", "client")) == "operator: Hello there.\nclient: hi"


def test_mono_text_has_no_speaker_prefix() -> None:
    assert render_text([Segment(MONO, 2, 3, "b"), Segment(MONO, 0, 1, " a ")], ("operator", "client")) == "a\nb"
