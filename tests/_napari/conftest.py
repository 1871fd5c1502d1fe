"""Fixtures for the napari front end. The real model (``lite_medsam``), the sample data
(``nuclei_data``) and ``artifacts_dir`` (tests/_artifacts/, git-ignored) come from tests/conftest.py;
napari's ``make_napari_viewer`` from napari's pytest plugin (``napari.utils._testsupport``)."""

from __future__ import annotations

import pytest


@pytest.fixture
def notifications():
    """Messages napari shows as notifications during the test, in order."""
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def _record(event):
        seen.append(str(event.value.message if hasattr(event, "value") else event))

    notification_manager.notification_ready.connect(_record)
    yield seen
    notification_manager.notification_ready.disconnect(_record)
