"""Printed handouts: the library twins of `aftercal handout` and of `treatments add|link ... --handout`.

Nothing here prints. The drawing channel (`calendars.handout`: PyMuPDF and segno, the `handout`
extra) is imported inside the functions that draw, so `import aftercal` stays light.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from reminders.errors import InputError
from reminders.files import write_atomic
from reminders.schedule import CarePlan, Clinic

if TYPE_CHECKING:
    from aftercal.feeds import NewLink
    from calendars.feeds.store import Treatment

PAPERS = ("a4", "letter")
FORMATS = {".pdf": "pdf", ".png": "png"}
# Territories whose paper is US Letter: the locales of glibc's LC_PAPER data with a 216 x 279 mm
# page (en_US and the locales that copy it: en_CA, fr_CA, es_MX, tl_PH/en_PH/fil_PH, es_PR, and
# Bolivia, Chile, Colombia, Costa Rica, Guatemala, Nicaragua, Panama, El Salvador, Venezuela).
LETTER_TERRITORIES = frozenset({"US", "CA", "MX", "PH", "PR", "BO", "CL", "CO", "CR", "GT", "NI", "PA", "SV", "VE"})
_LOCALE = re.compile(r"[A-Za-z]{2,3}_([A-Za-z]{2})(?:[.@]|$)")


def default_paper(environ: Mapping[str, str] | None = None) -> str:
    """The paper of this machine's locale: "letter" in a US Letter territory, else "a4".

    The locale is the first of LC_ALL, LC_PAPER and LANG that is set (as POSIX ranks them), and
    its territory the two letters after `_` (`en_US.UTF-8` -> US). No locale, or C/POSIX: a4.
    """
    env = os.environ if environ is None else environ
    value = next((env[name] for name in ("LC_ALL", "LC_PAPER", "LANG") if env.get(name)), "")
    match = _LOCALE.match(value)
    return "letter" if match and match.group(1).upper() in LETTER_TERRITORIES else "a4"


def paper_size(value: str | None) -> str:
    """A paper option as typed ("A4", "letter", or None for the locale's) as "a4" or "letter"."""
    if value is None:
        return default_paper()
    paper = value.strip().lower()
    if paper not in PAPERS:
        raise InputError(f"--paper {value!r}: use a4 or letter")
    return paper


def handout_format(path: str | Path) -> str:
    """ "pdf" or "png", from the file name's suffix."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"cannot write a handout to {Path(path).name!r}: use a file name ending in .pdf or .png")
    return fmt


def check_link(link: str | None) -> None:
    """An InputError unless `link` is None or an absolute http(s) address without spaces."""
    if link is None:
        return
    if not re.fullmatch(r"https?://[^\s/?#]+\S*", link) or any(ord(c) < 32 or ord(c) == 127 for c in link):
        raise InputError(f"the link {link[:80]!r} must be an absolute http:// or https:// address")


def check_handout_file(path: str | Path) -> None:
    """Fail now if a handout could not be drawn or written to `path` later (before a link is made:
    a new link is shown only once)."""
    from calendars.handout import check_installed

    handout_format(path)
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"cannot write a handout to {target}: folder {target.parent} does not exist")
    check_installed()


def make_handout(
    plan: CarePlan,
    *,
    link: str | None = None,
    clinic: Clinic | None = None,
    paper: str = "a4",
    fmt: str = "pdf",
) -> bytes:
    """The plan's printed handout as PDF or PNG bytes, on "a4" or "letter".

    `link` (the patient's page, where a QR code leads) adds its QR code, the link and how to
    subscribe; `clinic` defaults to the plan's (`--clinic-*`). The patient's name appears only
    when the plan's options carry one; with discreet options the wording is neutral.
    """
    from calendars.handout import handout_sheet, render_handout

    check_link(link)
    return render_handout(handout_sheet(plan, link=link, clinic=clinic), paper=paper_size(paper), fmt=fmt).data


def write_handout(
    plan: CarePlan,
    path: str | Path,
    *,
    link: str | None = None,
    clinic: Clinic | None = None,
    paper: str | None = None,
) -> None:
    """Write the handout atomically: PDF or PNG by the file's suffix, `paper` None for the locale's.

    A handout with the patient's name or a link (its token is a secret) is readable by its owner
    only (0600, also when it replaces a file); otherwise the file honours the umask.
    """
    fmt = handout_format(path)
    data = make_handout(plan, link=link, clinic=clinic, paper=paper_size(paper), fmt=fmt)
    private = bool(link or plan.options.patient_name)
    write_atomic(path, data, private=private, mode=0o600 if private else None)


def treatment_plan_for_handout(treatment: Treatment) -> CarePlan:
    """A stored treatment's plan, named for the patient when the clinic gave a --patient-name
    (the handout is for that patient's hands, whether or not the name is in the feed)."""
    plan = treatment.plan()
    name = treatment.options.patient_name
    if name == plan.options.patient_name:
        return plan
    return dataclasses.replace(plan, options=dataclasses.replace(plan.options, patient_name=name))


def write_link_handout(new_link: NewLink, path: str | Path, *, base_url: str, paper: str | None = None) -> str:
    """The handout of a treatment whose link was just made (`add_treatment`, `rotate_link`), with
    the QR code of its page; returns the page link it carries."""
    from aftercal.feeds import feed_links

    page = feed_links(base_url, new_link.token).page
    write_handout(treatment_plan_for_handout(new_link.treatment), path, link=page, paper=paper)
    return page
