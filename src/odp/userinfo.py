"""No credentials in the URLs of a definition: a URL with userinfo (`scheme://user:password@host`)
in a pipeline definition or a city file is refused when the file is read, with a one-line
ConfigError naming the file and the key (the URL shown redacted). Secrets come from the
environment or a secrets file (`*_env`, `*_file` keys); a definition is committed, printed by
`odp validate`, and its URLs end up in logs, the history and on the portal."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from odp.errors import ConfigError


def refuse_userinfo(table: dict[str, Any], where: str, advice: str) -> None:
    """ConfigError for the first string of `table` (nested tables and lists too) that is a URL
    with userinfo: `{where} {key}: {redacted url} carries credentials … {advice}`."""
    for key, text in strings(table, ""):
        if has_userinfo(text):
            from odp.redact import redact_url

            raise ConfigError(f"{where} {key}: {redact_url(text)} carries credentials in the URL "
                              f"(user:password@): refused; {advice}")


def refuse_userinfo_in_tables(raw: dict[str, Any], where: str, advice: str,
                              skip: frozenset[str] = frozenset()) -> None:
    """`refuse_userinfo` over a whole TOML file, each key named by its table (`[portal] url`,
    `[reference_layers.addresses] url`); top-level tables in `skip` are left to their owner."""
    for name, value in raw.items():
        if name in skip:
            continue
        if isinstance(value, dict):
            for key, text in strings(value, ""):
                table, _, leaf = f"{name}.{key}".rpartition(".")
                if has_userinfo(text):
                    refuse_userinfo({leaf: text}, f"{where}: [{table}]", advice)
        else:
            refuse_userinfo({name: value}, f"{where}:", advice)


def strings(value: Any, key: str) -> Iterator[tuple[str, str]]:
    """Every string in a TOML value, with its key path (`files[0].url`)."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from strings(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from strings(item, f"{key}[{index}]")


def has_userinfo(text: str) -> bool:
    """Whether a string parses as a URL (`scheme://host…`) whose authority holds an `@`."""
    if "://" not in text or "@" not in text:
        return False
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return False
    return bool(parts.scheme and parts.netloc and "@" in parts.netloc)
