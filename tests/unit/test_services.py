"""The seam every village service shares: the list, its settings, the loops over it, the web
side's menu and catalogs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from agent.accounts import AccountStore, Role
from agent.audit import AuditLog
from agent.errors import ConfigError
from agent.privacy import Vault
from agent.store.database import Database
from agent.village.homestay import HomestayService
from agent.village.service import ServiceParts, ServiceSpec, VillageService
from agent.village.services import SERVICES, Services, build_services
from tests.fixtures.browser import FAST_HASHER, kiosk_config


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deadline: str = "10:00"
    days: int = 7


class _Probe:
    """A service that records what the runtime asked of it."""

    def __init__(self, parts: ServiceParts, name: str, *, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.calls: list[str] = []
        self.settings = parts.settings(name, _Settings)
        self.homestays = parts.service(HomestayService) if name == "after" else None

    def migrate(self) -> None:
        self.calls.append("migrate")

    def purge_expired(self) -> int:
        self.calls.append("purge")
        if self.fail:
            raise RuntimeError("disk gone")
        return 3

    def tick(self) -> None:
        self.calls.append("tick")
        if self.fail:
            raise RuntimeError("disk gone")


def _spec(name: str, *, fail: bool = False) -> ServiceSpec:
    def build(parts: ServiceParts) -> VillageService:
        return _Probe(parts, name, fail=fail)

    return ServiceSpec(name, build, {f"{name}.bad": "Bad."})


def _parts(tmp_path: Path, **services: dict[str, Any]) -> ServiceParts:
    database = Database(tmp_path / "kiosk.sqlite3")
    audit = AuditLog(database)
    config = kiosk_config(tmp_path).model_copy(update={"services": services})
    return ServiceParts(
        database=database,
        audit=audit,
        accounts=AccountStore(database, hasher=FAST_HASHER),
        vault=Vault.load_or_create(tmp_path / "secrets" / "key"),
        config=config,
    )


def test_every_service_is_built_and_migrated_in_list_order(tmp_path: Path) -> None:
    specs = (*SERVICES, _spec("after"))
    services = build_services(_parts(tmp_path), specs)
    assert list(services) == [spec.name for spec in specs]
    probe = services["after"]
    assert isinstance(probe, _Probe)
    assert probe.calls == ["migrate"]
    # A later service gets the earlier ones it relies on.
    assert probe.homestays is services.get_typed(HomestayService)


def test_a_service_that_relies_on_a_later_one_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="HomestayService must come earlier"):
        build_services(_parts(tmp_path), (_spec("after"), *SERVICES))


def test_a_settings_table_for_no_service_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build_services(_parts(tmp_path, carre={"deadline": "09:00"}), SERVICES)
    known = ", ".join(spec.name for spec in SERVICES)
    assert caught.value.problems == [f"services.carre: no such service (known: {known})"]


def test_a_service_reads_its_own_checked_settings(tmp_path: Path) -> None:
    services = build_services(_parts(tmp_path, probe={"days": 3}), (_spec("probe"),))
    probe = services["probe"]
    assert isinstance(probe, _Probe)
    assert probe.settings == _Settings(days=3)
    with pytest.raises(ConfigError) as caught:
        build_services(_parts(tmp_path, probe={"days": "many", "colour": 1}), (_spec("probe"),))
    assert sorted(p.split(":")[0] for p in caught.value.problems) == [
        "services.probe.colour",
        "services.probe.days",
    ]


def test_one_failing_service_does_not_stop_the_others_purge_or_tick(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    services = build_services(_parts(tmp_path), (_spec("broken", fail=True), _spec("fine")))
    with caplog.at_level(logging.ERROR):
        assert services.purge_expired() == {"fine": 3}
        services.tick()
    fine = services["fine"]
    assert isinstance(fine, _Probe)
    assert fine.calls == ["migrate", "purge", "tick"]
    assert "purging the broken service failed" in caplog.text
    assert "scheduled work of the broken service failed" in caplog.text


def test_lookup_by_kind_names_what_is_missing() -> None:
    with pytest.raises(LookupError, match="no HomestayService"):
        Services({}).get_typed(HomestayService)


def test_every_service_in_the_list_has_its_web_folder_tests_and_catalogs() -> None:
    """What adding a service means: its folders, one line in the list, its catalogs."""
    from web_ui.i18n import LANGUAGES, catalog_files
    from web_ui.village import service_webs

    names = [spec.name for spec in SERVICES]
    webs = service_webs(names)
    assert [web.name for web in webs] == names
    root = Path(__file__).resolve().parents[2]
    for name in names:
        assert (root / "agent" / "village" / name / "__init__.py").is_file() or (
            root / "agent" / "village" / f"{name}.py"
        ).is_file(), name
        assert (root / "tests" / "village" / name / "__init__.py").is_file(), name
    for language in LANGUAGES:
        files = catalog_files(language)
        assert files[0].name == f"{language}.json"
        for path in files[1:]:
            service = path.parents[1].name
            keys = json.loads(path.read_text(encoding="utf-8"))
            assert all(
                key.startswith((f"{service}.", f"error.{service}.", f"nav.{service}"))
                for key in keys
            ), f"{path}: every key starts with the service's name"


def test_the_menu_of_each_role_comes_from_the_services_it_may_use(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.fixtures.browser import USERS, build_web_context
    from web_ui.app import create_app
    from web_ui.security import SESSION_COOKIE

    parts = build_web_context(tmp_path)
    app = create_app(parts.context)
    for role, username in USERS.items():
        parts.add_user(username, role)
    for role, username in USERS.items():
        client = TestClient(app, follow_redirects=False)
        accounts = parts.context.accounts
        client.cookies.set(
            SESSION_COOKIE, accounts.start_session(accounts.get_user(username)).token
        )
        html = client.get("/").text
        expected = [
            entry.path
            for web in app.state.service_webs
            for entry in web.nav
            if Role(role) in entry.roles
        ]
        for path in expected:
            assert f'href="{path}"' in html, (role, path)
        hidden = {e.path for w in app.state.service_webs for e in w.nav} - set(expected)
        nav = html.split('<nav class="nav"', 1)[1].split("</nav>", 1)[0]
        for path in hidden:
            assert f'href="{path}"' not in nav, (role, path)


def test_a_service_field_is_named_from_its_own_catalog() -> None:
    from web_ui.i18n import Translator

    for language in ("zh-CN", "en"):
        t = Translator(language)
        label = t("disputes.field.description")
        assert label != "disputes.field.description"
        sentence = t.field_error("description", "disputes.description.required")
        assert label in sentence and "field.description" not in sentence


def test_kiosk_only_entries_stay_off_a_phones_menu(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.fixtures.browser import build_web_context
    from web_ui.app import create_app

    parts = build_web_context(tmp_path)
    app = create_app(parts.context)
    kiosk_only = [e for w in app.state.service_webs for e in w.nav if e.kiosk_only]
    assert kiosk_only, "the dispute filing entry is the kiosk's alone"
    # TestClient's client is not on loopback: a phone, as far as the app knows.
    nav = TestClient(app).get("/").text.split('<nav class="nav"', 1)[1].split("</nav>", 1)[0]
    for entry in kiosk_only:
        assert f'href="{entry.path}"' not in nav, entry.path
    # The menu's status entry leads to the status page, not to the home screen.
    assert 'href="/status"' in nav


def test_the_kiosk_screens_menu_leaves_the_tiles_to_its_home_screen(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.fixtures.browser import build_web_context
    from web_ui.app import create_app

    app = create_app(build_web_context(tmp_path).context)
    tiles = [e.path for w in app.state.service_webs for e in w.nav if e.tile and None in e.roles]
    assert tiles
    # The kiosk's own browser is the client on loopback.
    kiosk = TestClient(app, client=("127.0.0.1", 50000))
    html = kiosk.get("/").text
    nav = html.split('<nav class="nav"', 1)[1].split("</nav>", 1)[0]
    main = html.split("</nav>", 1)[1]
    for path in tiles:
        assert f'href="{path}"' not in nav, path
        assert f'href="{path}"' in main, path
    assert 'href="/"' in nav, "one way home from every page"


def test_a_settings_table_for_a_service_without_settings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        build_services(_parts(tmp_path, homestay={"retention": 5}), SERVICES)
    assert caught.value.problems == ["services.homestay: this service has no settings"]


def test_a_tourists_phone_gets_the_public_tiles_only(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from tests.fixtures.browser import build_web_context
    from web_ui.app import create_app

    app = create_app(build_web_context(tmp_path).context)
    entries = [e for w in app.state.service_webs for e in w.nav if e.tile and None in e.roles]
    html = TestClient(app).get("/").text  # not on loopback: a phone
    main = html.split("</nav>", 1)[1]
    for entry in entries:
        shown = f'data-tile="{entry.path}"' in main
        assert shown is not entry.kiosk_only, entry.path
    assert 'data-tile="/products"' in main
