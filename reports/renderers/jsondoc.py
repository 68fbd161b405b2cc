"""JSON debrief: the canonical ``bcdrill/debrief/v1`` document (for the chosen audience)."""

from __future__ import annotations

import json

from reports.debrief.executive import executive_summary
from reports.debrief.model import Debrief, plain
from reports.i18n import translator
from reports.renderers.common import RenderOptions


def render(debrief: Debrief, options: RenderOptions) -> str:
    """Canonical JSON (sorted keys, floats rounded to three places); texts stay English.

    The executive summary is added as ``executive_summary``: each sentence's catalogue key and
    values (to translate) with its English ``text``.
    """
    del options  # the document is language-neutral: messages carry their catalogue keys
    english = translator("en")
    document = debrief.to_json()
    document["executive_summary"] = [
        {**plain(m), "text": english.message(m)} for m in executive_summary(debrief)
    ]
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
