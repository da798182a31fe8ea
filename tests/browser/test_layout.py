"""The panel at phone width, and by keyboard alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import Service
from tests.browser.panel import Keys, Panel

pytestmark = pytest.mark.slow


@pytest.fixture
def phone(panel: Panel) -> Iterator[Panel]:
    """A 360 px wide phone screen (as the browser's device emulation reports it)."""
    panel.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 780, "deviceScaleFactor": 2, "mobile": True},
    )
    yield panel
    panel.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _fits(panel: Panel) -> bool:
    """Nothing wider than the screen: no sideways scrolling."""
    return bool(
        panel.driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth "
            "&& window.innerWidth === 360;"
        )
    )


def test_every_page_fits_a_phone_screen(phone: Panel, service: Service) -> None:
    owner = service.account("phone")
    server = service.create_server(owner, "pocket-server-with-a-long-name")
    phone.sign_in(owner.token)
    for route, name in (
        ("/servers", "phone-servers"),
        (f"/servers/{server['id']}", "phone-server-detail"),
        ("/servers/new", "phone-create"),
        ("/ssh-keys", "phone-ssh-keys"),
        ("/account", "phone-account"),
    ):
        phone.open(route)
        phone.wait(lambda d: _fits(phone), f"{route} to fit 360 px")
        phone.screenshot(name)


def test_the_panel_works_by_keyboard(panel: Panel, service: Service) -> None:
    owner = service.account("keyboard")
    server = service.create_server(owner, "keyed")
    panel.driver.get(f"{service.base_url}/")
    panel.wait_ready()
    # The token field has the focus; Enter signs in.
    active = panel.focused()
    assert active.get_attribute("type") == "password"
    active.send_keys(owner.token, Keys.ENTER)
    panel.text_in("h1", "Servers")
    panel.wait(lambda d: d.switch_to.active_element.tag_name == "h1", "the heading's focus")

    # On a fresh page the first Tab reaches the skip link; following it lands in the page.
    panel.driver.refresh()
    panel.wait_ready()
    panel.tab()
    skip = panel.focused()
    assert skip.text == "Skip to content"
    assert (
        panel.driver.execute_script("return getComputedStyle(arguments[0]).outlineStyle;", skip)
        != "none"
    )
    skip.send_keys(Keys.ENTER)
    assert panel.focused().get_attribute("id") == "main"

    # Tab to the server's link and open it: the page's heading takes the focus.
    for _ in range(20):
        panel.tab()
        if panel.focused().text == "keyed":
            break
    focused = panel.focused()
    assert focused.text == "keyed"
    assert (
        panel.driver.execute_script("return getComputedStyle(arguments[0]).outlineStyle;", focused)
        != "none"
    )
    focused.send_keys(Keys.ENTER)
    panel.wait(
        lambda d: (
            d.switch_to.active_element.tag_name == "h1"
            and d.switch_to.active_element.text == "keyed"
        ),
        "the heading to take the focus",
    )
    assert f"#/servers/{server['id']}" in panel.driver.current_url


# WCAG's contrast ratio of each visible text's colour against the first opaque background
# behind it (the panel draws no text over images or gradients).
_LOW_CONTRAST = """
const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
const channel = (v) => {
  v /= 255;
  return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
};
const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
const background = (el) => {
  for (let node = el; node; node = node.parentElement) {
    const rgba = parse(getComputedStyle(node).backgroundColor);
    if (rgba.length === 3 || (rgba.length === 4 && rgba[3] === 1)) return rgba;
  }
  return [255, 255, 255];
};
const low = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let text = walker.nextNode(); text; text = walker.nextNode()) {
  const el = text.parentElement;
  if (!text.textContent.trim() || !el.checkVisibility() || el.closest(".visually-hidden")) continue;
  if (el.closest("option")) continue;
  const fg = luminance(parse(getComputedStyle(el).color));
  const bg = luminance(background(el));
  const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
  if (ratio < 4.5) low.push(`${ratio.toFixed(2)}: ${text.textContent.trim().slice(0, 40)}`);
}
return low;
"""


def test_text_contrast_is_at_least_4_5_to_1(panel: Panel, service: Service) -> None:
    owner = service.account("contrast")
    server = service.create_server(owner, "contrasted")
    with owner.client(service.base_url) as api:
        api.post(
            "/servers/", json={"name": "busy", "plan_id": 3, "os_id": 5, "location": "us-east"}
        )
    panel.driver.get(f"{service.base_url}/")
    panel.wait_ready()
    panel.fill("API token", "vps_wrong")
    panel.click("Sign in")
    panel.wait(lambda d: panel.field_error("token"), "the token's error")
    checked = ["sign-in"]
    assert panel.driver.execute_script(_LOW_CONTRAST) == [], checked
    panel.sign_in(service.token(owner.name, read_only=True))
    for route in ("/servers", f"/servers/{server['id']}", "/servers/new", "/ssh-keys", "/account"):
        panel.open(route)
        checked.append(route)
        assert panel.driver.execute_script(_LOW_CONTRAST) == [], checked
