from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tagledger.site import EXAMPLE_SITE, SiteError, ZoneRole, load_site, parse_site


def _example() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(EXAMPLE_SITE.read_text())  # type: ignore[no-any-return]


def test_example_site_loads_with_required_zone_roles() -> None:
    site = load_site(EXAMPLE_SITE)
    roles = {z.role for z in site.stores[0].zones}
    assert {ZoneRole.POS, ZoneRole.EXIT} <= roles
    assert len(roles) >= 4
    store, reader = site.find_reader("paris-01-r3")
    assert store.id == "paris-01"
    assert store.zone(reader.antennas[0].zone).role is ZoneRole.POS


def test_wrong_zone_role_names_file_path_and_allowed_values(tmp_path: Path) -> None:
    data = _example()
    data["stores"][0]["zones"][1]["role"] = "storage"
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SiteError) as info:
        load_site(path)
    message = str(info.value)
    assert str(path) in message
    assert "stores[0].zones[1].role" in message
    for role in ZoneRole:
        assert f"'{role.value}'" in message


def test_antenna_pointing_at_unknown_zone_is_refused_with_its_path() -> None:
    data = _example()
    data["stores"][0]["readers"][1]["antennas"][2]["zone"] = "recieving"
    with pytest.raises(SiteError) as info:
        parse_site(data, "site.yaml")
    assert info.value.problems == [
        (
            "stores[0].readers[1].antennas[2].zone",
            "unknown zone 'recieving'; zones of store 'paris-01': floor, backroom, fitting, pos, exit, receiving",
        )
    ]


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda d: d["stores"][0].update(timezone="Mars/Olympus"), "stores[0].timezone", "unknown IANA time zone"),
        (lambda d: d["stores"][0].update(latitude=123), "stores[0].latitude", "less than or equal to 90"),
        (lambda d: d["stores"][0]["readers"][0].update(colour="red"), "stores[0].readers[0].colour", "unknown field"),
        (
            lambda d: d["stores"][0]["readers"][0]["antennas"].append({"port": 1, "zone": "floor"}),
            "stores[0].readers[0].antennas",
            "listed twice",
        ),
        (lambda d: d["stores"][0]["readers"][1].update(id="paris-01-r1"), "stores[0].readers[1].id", "unique"),
        (lambda d: d["products"][0].update(gtin="123"), "products[0].gtin", "should match pattern"),
        (
            lambda d: d["stores"][0]["zones"][1].update(unconfirmed_after_s=1),
            "stores[0].zones[1].unconfirmed_after_s",
            "greater than or equal to 10",
        ),
    ],
)
def test_each_problem_is_reported_at_its_path(mutate, path, fragment) -> None:  # type: ignore[no-untyped-def]
    data = _example()
    mutate(data)
    with pytest.raises(SiteError) as info:
        parse_site(data, "site.yaml")
    assert any(p == path and fragment in m for p, m in info.value.problems), info.value.problems


def test_unreadable_and_non_yaml_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="cannot read"):
        load_site(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stores: [\n")
    with pytest.raises(SiteError, match="not valid YAML: line"):
        load_site(bad)


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    text = EXAMPLE_SITE.read_text().replace("    zones:\n", "    zones: []\n    zones:\n", 1)
    path = tmp_path / "site.yaml"
    path.write_text(text)
    with pytest.raises(SiteError, match=r"line \d+, column \d+: key 'zones' is given twice"):
        load_site(path)


def test_two_readers_on_one_host_and_port_are_refused() -> None:
    data = _example()
    data["stores"][0]["readers"][1]["port"] = data["stores"][0]["readers"][0]["port"]
    with pytest.raises(SiteError) as info:
        parse_site(data, "site.yaml")
    assert info.value.problems == [
        (
            "stores[0].readers[1].port",
            "reader 'paris-01-r1' already uses 127.0.0.1:15084; two agents must not drive one reader",
        )
    ]


def test_the_silence_limit_comes_from_the_zone_else_the_store_else_the_gateway() -> None:
    data = _example()
    store = parse_site(data).stores[0]
    assert store.unconfirmed_after_s_for("floor") is None  # the gateway's default policy
    data["stores"][0]["unconfirmed_after_s"] = 120
    data["stores"][0]["zones"][1]["unconfirmed_after_s"] = 1800
    store = parse_site(data).stores[0]
    assert store.unconfirmed_after_s_for("floor") == 120
    assert store.unconfirmed_after_s_for(data["stores"][0]["zones"][1]["id"]) == 1800


def test_stores_and_products_are_found_by_id() -> None:
    data = _example()
    data["stores"] = [{**data["stores"][0], "id": f"s{i}", "readers": []} for i in range(3)]
    data["products"] = [{"gtin": f"0000000000000{i}", "category": f"c{i}"} for i in range(3)]
    site = parse_site(data, "test")
    assert [site.store(f"s{i}").id for i in (2, 0, 1)] == ["s2", "s0", "s1"]
    with pytest.raises(KeyError):
        site.store("s9")
    found = site.product("00000000000001")
    assert found is not None
    assert found.category == "c1"
    assert site.product("00000000000009") is None
