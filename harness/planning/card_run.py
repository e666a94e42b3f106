"""What `--card NAME` puts into a run's settings: the card's own model (an API card: its endpoint), and the
checks that a card handed over by someone else cannot send a key where the user did not say."""

from __future__ import annotations

from harness.errors import ConfigError


def card_model(values: dict) -> dict:
    """`--card NAME` without `--model` runs the card's own model (an API card: its endpoint)."""
    if not values.get("card") or values.get("model"):
        return values
    from harness.cards.loader import find_card

    card = find_card(str(values["card"]))
    if card.hub_id:
        return {**values, "model": card.hub_id, **({"revision": card.revision} if card.revision and not values.get("revision") else {})}
    if card.api is not None:
        check_card_endpoint(card.name, card.api.base_url, card.api.api_key_env, values)
        return {"base_url": card.api.base_url, "api_key_env": card.api.api_key_env, **values, "model": f"openai:{card.api.model}"}
    return values


def check_card_endpoint(name: str, base_url: str, key_env: str, values: dict) -> None:
    """A card is data anyone may hand over (HARNESS_CARDS_DIR): it may not send a key over plain http
    to a remote host, nor name an arbitrary variable (GITHUB_TOKEN) as its key, unless the user
    confirms by giving --base-url / --api-key-env. A provider's variable goes to its own host only."""
    from urllib.parse import urlsplit

    from harness.backends.openai_http import KEY_HOSTS, is_local

    host = (urlsplit(base_url).hostname or "").lower()
    if not values.get("base_url") and base_url.startswith("http://") and not is_local(host):
        raise ConfigError(f"model card {name} sends requests over plain http to the remote host {host}",
                          f"pass --base-url {base_url} yourself to confirm, or fix the card to use https")
    if values.get("api_key_env"):
        return
    owner = {v: k for k, v in KEY_HOSTS.items()}.get(key_env)
    if (owner and owner != host) or (host in KEY_HOSTS and KEY_HOSTS[host] != key_env) or not key_env.endswith("_API_KEY"):
        raise ConfigError(f"model card {name} names {key_env} as the key for {host}; a card may not choose which secret is sent where",
                          f"pass --api-key-env {key_env} yourself to confirm")
