"""Profiles: where the CLI finds the API and the token, saved in a small TOML file.

The file holds secrets (tokens), so it is always written with mode 0600, atomically (a
crash never leaves half a file). It is read with `tomllib`; the writer is ours, since the
standard library has no TOML writer and the file's shape is tiny and fixed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_PROFILE = "default"


class ConfigError(Exception):
    """The configuration file exists but cannot be used as it is."""


@dataclass(frozen=True)
class Profile:
    name: str
    api_url: str
    token: str | None = None


@dataclass
class ConfigFile:
    """The whole file: the profiles, and the one `vps login` made active last."""

    path: Path
    profiles: dict[str, Profile] = field(default_factory=dict)
    active: str | None = None


@dataclass(frozen=True)
class Connection:
    """Where and as whom the commands talk to the API, once every source is weighed."""

    api_url: str
    token: str | None
    profile: str


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$VPS_CONFIG`, else `$XDG_CONFIG_HOME/vps/config.toml`, else `~/.config/vps/...`."""
    env = os.environ if environ is None else environ
    if env.get("VPS_CONFIG"):
        return Path(env["VPS_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "vps" / "config.toml"


def load(path: Path) -> ConfigFile:
    """The file's profiles; an absent file is an empty configuration, not an error."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return ConfigFile(path)
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    profiles: dict[str, Profile] = {}
    table = document.get("profiles", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: `profiles` must be a table")
    for name, values in table.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: profile {name!r} must be a table")
        api_url = values.get("api_url", DEFAULT_API_URL)
        token = values.get("token")
        if not isinstance(api_url, str) or not (token is None or isinstance(token, str)):
            raise ConfigError(f"{path}: profile {name!r} has a non-text api_url or token")
        profiles[name] = Profile(name, api_url, token)
    active = document.get("active")
    return ConfigFile(path, profiles, active if isinstance(active, str) else None)


def _quote(text: str) -> str:
    """A TOML basic string: backslash, quote and every control character escaped."""
    escaped: list[str] = []
    for character in text:
        if character in {'"', "\\"}:
            escaped.append("\\" + character)
        elif ord(character) < 0x20 or ord(character) == 0x7F:
            escaped.append(f"\\u{ord(character):04X}")
        else:
            escaped.append(character)
    return '"' + "".join(escaped) + '"'


def render(config: ConfigFile) -> str:
    lines = ["# vps command-line profiles (written by `vps login`; holds secrets)"]
    if config.active is not None:
        lines.append(f"active = {_quote(config.active)}")
    for profile in config.profiles.values():
        lines += ["", f"[profiles.{_quote(profile.name)}]"]
        lines.append(f"api_url = {_quote(profile.api_url)}")
        if profile.token is not None:
            lines.append(f"token = {_quote(profile.token)}")
    return "\n".join(lines) + "\n"


def save(config: ConfigFile) -> None:
    """Write the file with mode 0600 through a temporary file and a rename, so readers see
    the old file or the new one, and the token is never readable by others, even briefly."""
    path = config.path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(render(config))
        # os.open's mode is filtered by the umask and ignored for an existing file.
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def profile_name(flag: str | None, config: ConfigFile, environ: Mapping[str, str]) -> str:
    """`--profile`, else `$VPS_PROFILE`, else the active profile, else `default`."""
    return flag or environ.get("VPS_PROFILE") or config.active or DEFAULT_PROFILE


def resolve(
    config: ConfigFile,
    *,
    profile: str | None = None,
    api_url: str | None = None,
    token: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Connection:
    """Each setting from the first source that has it: the command's flags, then the
    environment (`VPS_API_URL`, `VPS_TOKEN`, `VPS_PROFILE`), then the profile, then the
    default URL. A profile named explicitly (flag or environment) must exist."""
    env = os.environ if environ is None else environ
    name = profile_name(profile, config, env)
    chosen = config.profiles.get(name)
    if chosen is None and (profile or env.get("VPS_PROFILE")):
        known = ", ".join(sorted(config.profiles)) or "none yet"
        raise ConfigError(
            f"no profile named {name!r} in {config.path} (profiles: {known}); "
            f"create it with `vps login --profile {name}`"
        )
    return Connection(
        api_url=(
            api_url
            or env.get("VPS_API_URL")
            or (chosen.api_url if chosen else None)
            or DEFAULT_API_URL
        ).rstrip("/"),
        token=token or env.get("VPS_TOKEN") or (chosen.token if chosen else None),
        profile=name,
    )
