"""Driving the Textual explorer in tests (`App.run_test()` pilots): wait until its workers are
done, type a sentence. Shared by tests/explore/."""

from __future__ import annotations


async def settle(app, pilot):
    """Until the workers (load, run, save) are done and the screen has caught up."""
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if app.loaded is not None and not any(w.is_running for w in app.workers):
            return
    raise AssertionError("the explorer never settled")


async def enter(app, pilot, text):
    """Type `text` into the sentence line and press Enter; then settle."""
    app.query_one("#sentence").value = text
    app.query_one("#sentence").focus()
    await pilot.press("enter")
    await settle(app, pilot)
