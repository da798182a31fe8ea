"""The panel as a user sees it: what to click, what to wait for, and screenshots."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The test modules import this one first: without selenium they are skipped, with the reason.
pytest.importorskip(
    "selenium", reason="browser tests: the selenium package is not installed (pip install selenium)"
)

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

__all__ = ["By", "Keys", "Panel"]

DOC_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TIMEOUT = 20.0


@dataclass
class Panel:
    driver: WebDriver
    base_url: str
    artifacts: Path

    def open(self, route: str = "/servers") -> None:
        self.driver.get(f"{self.base_url}/#{route}")
        self.wait_ready()

    def wait(
        self, condition: Callable[[WebDriver], Any], what: str, timeout: float = TIMEOUT
    ) -> Any:
        def guarded(driver: WebDriver) -> Any:
            try:
                return condition(driver)
            except (NoSuchElementException, StaleElementReferenceException):
                return False

        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            guarded, message=f"timed out waiting for {what}"
        )

    def wait_ready(self) -> None:
        """The page has finished drawing (the sign-in form, or a page of the panel)."""
        self.wait(
            lambda d: d.execute_script(
                "const m = document.getElementById('main');"
                "if (!document.body || !m) return false;"
                "return document.body.dataset.signedIn === 'false' ? "
                "  !!document.getElementById('sign-in-message') : "
                "  !!m && !m.hasAttribute('aria-busy') && !!m.dataset.ready;"
            ),
            "the page to be drawn",
        )

    def css(self, selector: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def shown(self, selector: str, what: str | None = None) -> WebElement:
        element: WebElement = self.wait(
            lambda d: (e := d.find_element(By.CSS_SELECTOR, selector)).is_displayed() and e,
            what or selector,
        )
        return element

    def text_in(self, selector: str, text: str, timeout: float = TIMEOUT) -> WebElement:
        element: WebElement = self.wait(
            lambda d: (e := d.find_element(By.CSS_SELECTOR, selector)) and text in e.text and e,
            f"{text!r} in {selector}",
            timeout,
        )
        return element

    def button(self, label: str) -> WebElement:
        for element in self.all("main button, dialog button"):
            if element.text.strip() == label:
                return element
        raise NoSuchElementException(f"no button {label!r}")

    def click(self, label: str) -> None:
        button = self.wait(lambda d: (b := self.button(label)).is_enabled() and b, label)
        button.click()

    def field(self, label: str) -> WebElement:
        """The control a visible label names (found as a user would: by its label)."""
        tag = self.driver.find_element(By.XPATH, f"//main//label[normalize-space()='{label}']")
        return self.driver.find_element(By.ID, str(tag.get_attribute("for")))

    def fill(self, label: str, value: str) -> None:
        element = self.field(label)
        element.clear()
        element.send_keys(value)

    def choose(self, label: str, visible_text_part: str) -> None:
        select = Select(self.field(label))
        for option in select.options:
            if visible_text_part in option.text:
                select.select_by_visible_text(option.text)
                return
        raise AssertionError(f"no option with {visible_text_part!r} in {label}")

    def field_error(self, name: str) -> str:
        return self.css(f'.field[data-field="{name}"] .field-error').text

    def sign_in(self, token: str) -> None:
        self.driver.get(f"{self.base_url}/")
        self.wait_ready()
        self.fill("API token", token)
        self.click("Sign in")
        self.wait(
            lambda d: d.execute_script("return document.body.dataset.signedIn") == "true",
            "the panel after signing in",
        )
        self.wait_ready()

    def status(self) -> str:
        """The status badge of the server page."""
        return str(self.css(".title-line .badge").get_attribute("data-status"))

    def wait_status(self, status: str, timeout: float = TIMEOUT) -> None:
        self.wait(lambda d: self.status() == status, f"the server to be {status}", timeout)

    def tab(self) -> WebElement:
        """Press Tab; the element that has the focus then."""
        ActionChains(self.driver).send_keys(Keys.TAB).perform()
        return self.focused()

    def focused(self) -> WebElement:
        return self.driver.switch_to.active_element

    def link(self, text: str) -> WebElement:
        return self.driver.find_element(By.LINK_TEXT, text)

    def record_statuses(self, selector: str) -> None:
        """Note every status the badge at `selector` shows from now on, however briefly."""
        self.driver.execute_script(
            """
            const selector = arguments[0];
            window.__statuses = [];
            const note = () => {
              const status = document.querySelector(selector)?.dataset.status;
              if (status && window.__statuses.at(-1) !== status) window.__statuses.push(status);
            };
            new MutationObserver(note).observe(document.body, {
              subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"],
            });
            note();
            """,
            selector,
        )

    def statuses(self) -> list[str]:
        return list(self.driver.execute_script("return window.__statuses;"))

    def mark_page(self) -> None:
        """A marker that survives only as long as the page is not reloaded."""
        self.driver.execute_script("window.__notReloaded = true;")

    def not_reloaded(self) -> bool:
        return bool(self.driver.execute_script("return window.__notReloaded === true;"))

    def screenshot(self, name: str, *, doc: bool = False) -> Path:
        # The pointer away from the controls: no hover state in the picture.
        ActionChains(self.driver).move_to_element_with_offset(self.css("body"), 0, 0).perform()
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        if doc and os.environ.get("VPS_UPDATE_SCREENSHOTS") == "1":
            DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOC_SCREENSHOTS / f"{name}.png")
        return path
