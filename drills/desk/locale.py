"""The drill desk's words in English and Simplified Chinese, per participant.

A participant's ``language`` (environment file: ``en`` or ``zh-CN``) picks the table; a
missing key falls back to English, so a page is never blank.
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.model.types import Participant

__all__ = ["DESK_LANGUAGES", "language_of", "words"]

_EN: dict[str, str] = {
    "title": "Drill desk",
    "idle": "No drill in progress. Keep this page: it comes alive when a drill starts.",
    "live": "A drill is in progress ({elapsed} since impact).",
    "quote": "Quote {code} in service-desk tickets and e-mails about it.",
    "messages": "Messages",
    "from": "from",
    "received": "received at +{elapsed}",
    "actions": "What have you done? Log each action when you have done it.",
    "checklist": "Your steps",
    "target": "target: within {within}",
    "done_at": "done at +{elapsed} by {by} ({source})",
    "out_of_order": "out of order",
    "note": "note (optional)",
    "done": "Done",
    "update": "Send update",
    "logged": "logged",
    "automatic": "Recorded automatically when monitoring sees it.",
    "decision": "Decision",
    "choose": "Choose one",
    "rationale": "Your reason, in one line",
    "decide": "Decide",
    "decided": "decided: {choice}",
    "other": "Something else you did",
    "other_hint": "Describe it in one line; the evaluator maps it",
    "log_other": "Log it",
    "refresh": "Refresh",
    "recorded": "Recorded: {step}. Thank you.",
    "duplicate": "{step} was already recorded; nothing changed.",
    "not_recorded": "Not recorded: {reason}",
    "entry_logged": "Logged for the evaluator. Thank you.",
}

_ZH: dict[str, str] = {
    "title": "演练服务台",
    "idle": "目前没有演练。请保留此页面：演练开始时它会自动更新。",
    "live": "演练进行中（影响开始后 {elapsed}）。",
    "quote": "在有关此事的服务台工单和邮件中请注明 {code}。",
    "messages": "消息",
    "from": "来自",
    "received": "收到时间 +{elapsed}",
    "actions": "您做了什么？每完成一项行动请记录一次。",
    "checklist": "您的步骤",
    "target": "目标：{within} 内",
    "done_at": "已于 +{elapsed} 由 {by} 完成（{source}）",
    "out_of_order": "顺序有误",
    "note": "备注（可选）",
    "done": "完成",
    "update": "发送进展通报",
    "logged": "已记录",
    "automatic": "监控发现后自动记录。",
    "decision": "决策",
    "choose": "请选择一项",
    "rationale": "一句话说明理由",
    "decide": "提交决策",
    "decided": "已决定：{choice}",
    "other": "您做的其他事情",
    "other_hint": "用一句话描述，由评估员归类",
    "log_other": "记录",
    "refresh": "刷新",
    "recorded": "已记录：{step}。谢谢。",
    "duplicate": "{step} 已经记录过，未作更改。",
    "not_recorded": "未记录：{reason}",
    "entry_logged": "已记录，供评估员归类。谢谢。",
}

_TABLES: Mapping[str, Mapping[str, str]] = {"en": _EN, "zh-CN": _ZH}
DESK_LANGUAGES = tuple(_TABLES)


def words(language: str) -> dict[str, str]:
    """The desk's words in ``language`` (English for anything unknown or missing)."""
    return {**_EN, **_TABLES.get(language, {})}


def language_of(name: str, participants: tuple[Participant, ...]) -> str:
    """The language of the participant called ``name`` (English when not listed)."""
    return next((p.language for p in participants if p.name == name), "en")
