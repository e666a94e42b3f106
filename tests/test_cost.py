"""Cost from time or tokens, and the packaged price table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from harness.errors import ConfigError
from harness.measure.cost import api_price, hourly_price, load_prices, time_cost, token_cost

SHARED = Path(os.environ.get("HARNESS_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def test_time_cost_known_values():
    c = time_cost(1800.0, 2.0, 250_000, 40, price_source="user")
    assert c == {
        "price_per_hour_usd": 2.0,
        "price_source": "user",
        "basis": "time",
        "usd_total": 1.0,
        "usd_per_1m_output_tokens": 4.0,
        "usd_per_correct": 0.025,
    }


def test_time_cost_undefined_parts_are_none():
    c = time_cost(60.0, 3.6, 0, 0)
    assert c["usd_total"] == pytest.approx(0.06)
    assert c["usd_per_1m_output_tokens"] is None and c["usd_per_correct"] is None
    no_price = time_cost(60.0, None, 100, 3, price_source="no price given")
    assert no_price["usd_total"] is None and no_price["usd_per_correct"] is None
    assert no_price["basis"] == "time"


def test_token_cost_deepseek_reasoner():
    # 2M input (cache miss) and 1M output at $0.55 / $2.19 per 1M.
    c = token_cost(2_000_000, 1_000_000, 0.55, 2.19, 10, price_source="deepseek-reasoner")
    assert c["basis"] == "tokens" and c["price_per_hour_usd"] is None
    assert c["usd_total"] == pytest.approx(1.10 + 2.19)
    assert c["usd_per_1m_output_tokens"] == pytest.approx(3.29)
    assert c["usd_per_correct"] == pytest.approx(0.329)
    assert token_cost(None, 10, 1.0, 1.0, 1)["usd_total"] is None


def test_hourly_price_sources():
    assert hourly_price(2.5, None) == (2.5, "user: --price-per-hour 2.5")
    price, source = hourly_price(1.0, "aws-g5.xlarge")
    assert price == 1.0 and "overrides" in source
    assert hourly_price(None, None)[0] is None
    price, source = hourly_price(None, "aws-p5.48xlarge")
    assert price == pytest.approx(55.04) and "aws.amazon.com" in source and "as of" in source
    per_gpu, source = hourly_price(None, "aws-p5.48xlarge/gpu")
    assert per_gpu == pytest.approx(6.88) and source.startswith("1/8 of")
    assert hourly_price(None, "laptop")[0] == 0.0


@pytest.mark.parametrize("price,instance", [(-1.0, None), (float("nan"), None), (None, "nope"), (None, "laptop/gpu")])
def test_hourly_price_rejects_bad_input(price, instance):
    with pytest.raises(ConfigError):
        hourly_price(price, instance)


def test_price_table_entries_are_sourced():
    table = load_prices()
    assert table["instances"] and table["apis"]
    for name, e in {**table["instances"], **table["apis"]}.items():
        assert e.get("source") and e.get("as_of") and e.get("status"), name
        assert e["status"] in {"verified", "secondary", "derived", "unverified", "UNVERIFIED", "definition"}, name


def test_api_prices_match_published_claims():
    assert api_price("deepseek-reasoner")[:2] == (0.55, 2.19)
    assert api_price("o1")[:2] == (15.0, 60.0)
    assert api_price("o1-mini")[:2] == (1.1, 4.4)  # its card (OpenAI's model page), not the launch price
    with pytest.raises(ConfigError):
        api_price("gpt-unknown")
    published = SHARED / "claims" / "published.yaml"
    if not published.exists():
        pytest.skip("shared claims not present")
    claims = yaml.safe_load(published.read_text())["article_claims"]
    r1, o1 = claims["r1_api_price_usd_per_1m"], claims["o1_api_price_usd_per_1m"]
    apis = load_prices()["apis"]
    assert apis["deepseek-reasoner"]["input_per_1m"] == r1["input_cache_miss"]
    assert apis["deepseek-reasoner"]["output_per_1m"] == r1["output"]
    assert apis["o1"]["input_per_1m"] == o1["input"] and apis["o1"]["output_per_1m"] == o1["output"]


def test_api_prices_have_one_source_the_cards(tmp_path):
    """prices.yaml and a card once disagreed on o1-mini ($3/$12 vs $1.10/$4.40): now every API price
    is read from the card, under the snapshot name, the undated name and the card name."""
    from harness.cards.loader import list_cards

    cards = [c for c in list_cards() if c.api is not None]
    assert {c.name for c in cards} >= {"deepseek-r1", "o1-1217", "o1-mini"}
    for card in cards:
        for key in {card.api.model, card.name}:
            p_in, p_out, source = api_price(key)
            assert (p_in, p_out) == (card.api.prices.input_per_1m, card.api.prices.output_per_1m), key
            assert f"model card {card.name}" in source
    import harness

    packaged = Path(harness.__file__).parent / "data" / "prices.yaml"
    assert "apis" not in (yaml.safe_load(packaged.read_text()) or {})
    second = tmp_path / "prices.yaml"
    second.write_text("instances: {}\napis:\n  o1-mini: {input_per_1m: 3.0, output_per_1m: 12.0}\n")
    with pytest.raises(ConfigError, match="model cards"):
        load_prices(str(second))


def test_injected_table():
    table = {"instances": {"box": {"usd_per_hour": 1.5, "gpus": 2, "source": "s", "as_of": "d"}}, "apis": {}}
    assert hourly_price(None, "box/gpu", table=table)[0] == 0.75
