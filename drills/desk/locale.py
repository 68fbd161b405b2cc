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
    # the controller's and evaluator's page
    "ev_title": "Evaluator desk",
    "ev_recorded": "Recorded: {what}.",
    "ev_live": "Drill in progress: {elapsed} since impact · code",
    "ev_col_step": "step",
    "ev_col_target": "target",
    "ev_col_done": "done",
    "ev_open": "open",
    "ev_timeline": "Timeline",
    "ev_col_at": "at",
    "ev_col_what": "what",
    "ev_col_party": "party",
    "ev_col_detail": "detail",
    "ev_entries": "Players' entries",
    "ev_entries_none": "No entries yet.",
    "ev_col_by": "by",
    "ev_col_entry": "entry",
    "ev_col_mapping": "step",
    "ev_no_step": "(no step)",
    "ev_map": "Map",
    "ev_mapped": "mapped to {step} by {by}",
    "ev_mapped_none": "no step (by {by})",
    "ev_correct": "Correct a recorded step",
    "ev_recorded_step": "recorded step",
    "ev_should_be": "should have been",
    "ev_correct_button": "Move the record",
    "ev_record": "Record",
    "ev_observation": "Observation",
    "ev_strength": "strength",
    "ev_improvement": "area for improvement",
    "ev_capability_hint": "capability (e.g. communication)",
    "ev_saw": "what you saw",
    "ev_internal": "internal (not in the client's debrief)",
    "ev_record_observation": "Record observation",
    "ev_rating": "HSEEP rating",
    "ev_rationale": "rationale",
    "ev_record_rating": "Record rating",
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
    "ev_title": "评估员服务台",
    "ev_recorded": "已记录：{what}。",
    "ev_live": "演练进行中：影响开始后 {elapsed} · 编号",
    "ev_col_step": "步骤",
    "ev_col_target": "目标",
    "ev_col_done": "完成情况",
    "ev_open": "未完成",
    "ev_timeline": "时间线",
    "ev_col_at": "时间",
    "ev_col_what": "事件",
    "ev_col_party": "方",
    "ev_col_detail": "详情",
    "ev_entries": "参演人员的自行记录",
    "ev_entries_none": "暂无记录。",
    "ev_col_by": "记录人",
    "ev_col_entry": "内容",
    "ev_col_mapping": "步骤",
    "ev_no_step": "（不对应任何步骤）",
    "ev_map": "归类",
    "ev_mapped": "已由 {by} 归类为 {step}",
    "ev_mapped_none": "不对应任何步骤（{by}）",
    "ev_correct": "更正已记录的步骤",
    "ev_recorded_step": "已记录的步骤",
    "ev_should_be": "应为",
    "ev_correct_button": "移动记录",
    "ev_record": "记录",
    "ev_observation": "观察",
    "ev_strength": "优点",
    "ev_improvement": "待改进之处",
    "ev_capability_hint": "能力（例如：沟通）",
    "ev_saw": "您看到的情况",
    "ev_internal": "内部（不写入客户版复盘报告）",
    "ev_record_observation": "记录观察",
    "ev_rating": "HSEEP 评级",
    "ev_rationale": "理由",
    "ev_record_rating": "记录评级",
}

_TABLES: Mapping[str, Mapping[str, str]] = {"en": _EN, "zh-CN": _ZH}
DESK_LANGUAGES = tuple(_TABLES)


def words(language: str) -> dict[str, str]:
    """The desk's words in ``language`` (English for anything unknown or missing)."""
    return {**_EN, **_TABLES.get(language, {})}


def language_of(name: str, participants: tuple[Participant, ...]) -> str:
    """The language of the participant called ``name`` (English when not listed)."""
    return next((p.language for p in participants if p.name == name), "en")
