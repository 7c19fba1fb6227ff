"""The report's words in English and Chinese (`--lang en|zh`), and the title from the log's own counties."""

from __future__ import annotations

import re
from collections.abc import Sequence

LANGS = ("en", "zh")

# Tongren's districts and counties (the 9 of "9+2" and Yanhe): the name a log may carry -> full Chinese name.
COUNTIES_ZH = {
    "yanhe": "沿河土家族自治县",
    "yuping": "玉屏侗族自治县",
    "dejiang": "德江县",
    "sinan": "思南县",
    "yinjiang": "印江土家族苗族自治县",
    "songtao": "松桃苗族自治县",
    "shiqian": "石阡县",
    "jiangkou": "江口县",
    "bijiang": "碧江区",
    "wanshan": "万山区",
}

PRODUCTS_ZH = {
    "chili": "辣椒",
    "oil_tea_fruit": "油茶果",
    "black_fungus": "黑木耳",
    "sweet_potato": "红薯",
    "tea_leaf": "茶叶",
    "sorghum": "高粱",
    "citrus": "柑橘",
    "vegetables": "蔬菜",
    "tea_tree_mushroom": "茶树菇",
    "live_pig": "生猪",
    "eco_chicken": "生态鸡",
    "white_goat": "白山羊",
}

WORDS_ZH = {
    # units, price bases, checks, phases
    "kg": "公斤",
    "head": "头",
    "mu": "亩",
    "yuan": "元",
    "floor": "保底价",
    "market": "市场价",
    "order_limit": "订单限价",
    "hash_chain": "哈希链",
    "duplicate_event": "重复事件",
    "signature": "签名",
    "re_execution": "重新执行",
    "invariant": "不变量",
    "snapshot": "快照",
    "reconciliation": "对账",
    "read postgres": "读取 PostgreSQL",
    "read kafka": "读取 Kafka",
    "hash chains": "哈希链",
    "signatures": "签名",
    "re-execution": "重新执行",
    "invariants": "不变量",
    "postgres": "PostgreSQL",
    "kafka": "Kafka",
    "ordered passes": "有序遍历",
    "parallel checks": "并行检查",
    "settlement and snapshots": "结算与快照",
    "duplicates and journal": "重复事件与日志完整性",
    "re-execution and market invariants": "重新执行与市场不变量",
    "questions to the store": "向存储查询（重复编号、日志计数）",
    "read and check (the products alongside)": "读取与检查（各产品同时重新执行）",
    "waiting for the products": "等待各产品重新执行",
    "settlement, pairing, last signatures": "结算、结对与其余签名",
    "findings and the state hash": "汇总发现与状态哈希",
    "hash chains, re-execution and market invariants": "哈希链、重新执行与市场不变量",
}

TEXT: dict[str, tuple[str, str]] = {
    "title": ("farmlink audit report: {scope}", "{scope}产销对接审计报告"),
    "title_none": ("farmlink audit report", "farmlink 产销对接审计报告"),
    "subtitle": (
        "Tongren, Guizhou · money in yuan (fen / 100), quantities exact · every figure drawn from the audited log",
        "贵州省铜仁市 · 金额单位为元（分 / 100），数量精确 · 所有图表均来自所审计的事件日志",
    ),
    "scope": (
        "Scope: {counties}; {townships} townships, {villages} villages, {households} households ({poor} registered poor); "
        "{buyers} buyers; products: {products}; business dates {first} to {last}.",
        "范围：{counties}；{townships} 个乡镇、{villages} 个村、{households} 户（建档立卡户 {poor} 户）；采购方 {buyers} 家；"
        "产品：{products}；业务日期 {first} 至 {last}。",
    ),
    "nav": ("Contents", "目录"),
    "findings": ("Findings", "审计发现"),
    "clean": ("Audit clean: {events} events checked, no findings.", "审计通过：共核查 {events} 个事件，未发现问题。"),
    "findings_head": ("Findings: {n}", "发现问题：{n} 项"),
    "findings_shown": (
        "The first {shown} of {n} findings; every one is in findings.json (farmlink audit --export DIR).",
        "此处列出前 {shown} 项（共 {n} 项）；完整清单见 findings.json（farmlink audit --export DIR）。",
    ),
    "not_clean_none": ("The audit says the log is not clean, but listed no finding.", "审计结论为有问题，但未列出具体问题。"),
    "see_event": ("the event", "查看事件"),
    "check": ("check", "检查项"),
    "count": ("findings", "数量"),
    "cited": ("Events the findings name", "问题所涉事件"),
    "event_at": (
        "{type} · {schema}/{stream}@{version} · position {position} · {at}",
        "{type} · {schema}/{stream}@{version} · 全局位置 {position} · {at}",
    ),
    "audit": ("The audit", "审计概况"),
    "item": ("item", "项目"),
    "value": ("value", "值"),
    "events_audited": ("events audited", "审计事件数"),
    "source": ("source", "数据来源"),
    "verdict": ("verdict", "结论"),
    "verdict_clean": ("clean", "通过"),
    "verdict_findings": ("{n} findings", "{n} 项问题"),
    "journal_inputs": ("journal inputs re-executed", "重新执行的日志输入"),
    "fills": ("fills", "成交笔数"),
    "reconciled": ("reconciled with Kafka", "已与 Kafka 对账"),
    "state_hash": ("state hash", "状态哈希"),
    "since": ("incremental audit", "增量审计"),
    "since_value": (
        "{before} events checked against the checkpoint, the {after} after it audited in full",
        "检查点之前的 {before} 个事件与检查点核对，其后的 {after} 个事件完整审计",
    ),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "phases": ("Seconds per phase", "各阶段耗时"),
    "phase": ("phase", "阶段"),
    "seconds": ("time", "耗时"),
    "share": ("share", "占比"),
    "total": ("total", "合计"),
    "workers": (
        "On {n} worker processes; CPU seconds per check in the workers (they overlap): {cpu}.",
        "由 {n} 个工作进程并行执行；各检查在工作进程中的 CPU 时间（相互重叠）：{cpu}。",
    ),
    "phases_chart": ("seconds per audit phase", "审计各阶段耗时"),
    "series": ("Volume and revenue by month", "按月成交量与收入"),
    "volume_caption": (
        "Volume per product by month (one panel per product, in its own unit)",
        "各产品按月成交量（每个产品一图，按其单位）",
    ),
    "volume_chart": ("{product}: volume by month ({unit})", "{product}：按月成交量（{unit}）"),
    "revenue_caption": ("Revenue by month, one line per product (yuan)", "按月收入，每个产品一条线（元）"),
    "revenue_chart": ("revenue by month and product (yuan)", "各产品按月收入（元）"),
    "product": ("product", "产品"),
    "month": ("month", "月份"),
    "quantity": ("quantity", "数量"),
    "revenue": ("revenue (yuan)", "收入（元）"),
    "activations": ("floor activations", "保底触发次数"),
    "totals_by_product": ("Totals by product", "各产品合计"),
    "by_month": ("every product and month ({n} rows)", "全部产品与月份（{n} 行）"),
    "commitments": ("Floor commitments: market price against the floor", "保底收购承诺：市场价与保底价"),
    "commitments_note": (
        "{n} commitments, {fills} fills, {activations} floor activations (the market was below the floor, so the floor "
        "was paid), {above} yuan paid above the market.",
        "共 {n} 项承诺，{fills} 笔成交，{activations} 次保底触发（市场价低于保底价，按保底价收购），高于市场价多付 {above} 元。",
    ),
    "commitments_charts": (
        "The {shown} commitments with the most floor activations: the reference market's price per grade of their fills "
        "(steps; small dots where prices are observed daily), the floor (dashed), each fill (red diamond: floor "
        "activation; blue dot: at the market).",
        "保底触发最多的 {shown} 项承诺：参考市场中其成交等级的价格（阶梯线；每日均有报价时为小圆点）、保底价（虚线）、"
        "每笔成交（红色菱形为保底触发，蓝色圆点为按市场价）。",
    ),
    "commitment_caption": (
        "{cid}: {buyer}, {product}, floor {floor} yuan/{unit}, {market} market",
        "{cid}：{buyer}，{product}，保底价 {floor} 元/{unit}，参考市场 {market}",
    ),
    "commitment_chart": ("commitment {cid}: market price against the floor over time", "承诺 {cid}：市场价与保底价随时间变化"),
    "commitments_top": (
        "The {shown} commitments with the most floor activations, of {n}; every one in commitments.csv (--export).",
        "保底触发最多的 {shown} 项承诺（共 {n} 项）；全部见 commitments.csv（--export）。",
    ),
    "no_commitments": ("The log holds no floor commitment.", "日志中没有保底收购承诺。"),
    "commitment": ("commitment", "承诺"),
    "buyer": ("buyer", "采购方"),
    "floor_yuan": ("floor (yuan)", "保底价（元）"),
    "valid": ("valid", "有效期"),
    "above_market": ("paid above market (yuan)", "高于市场价多付（元）"),
    "legend_floor": ("floor", "保底价"),
    "legend_market": ("{market} market, grade {grade}", "{market} 市场 {grade} 级"),
    "legend_fill": ("fill at the market", "按市场价成交"),
    "legend_activation": ("floor activation", "保底触发"),
    "legend_valid": ("commitment valid", "承诺有效期"),
    "fill_tip": (
        "{day} lot {lot} grade {grade}: {qty} {unit} at {price} yuan ({basis}; market {market})",
        "{day} 批次 {lot} {grade} 级：{qty} {unit}，单价 {price} 元（{basis}；市场价 {market}）",
    ),
    "price_tip": ("{market} grade {grade}, {day}: {price} yuan", "{market} {grade} 级，{day}：{price} 元"),
    "incomes": ("Household income", "农户收入"),
    "histogram_caption": ("Households by income paid (yuan)", "农户按已付收入分布（元）"),
    "histogram_chart": ("households by income paid, registered-poor and other", "按已付收入分布的农户（建档立卡户与其他）"),
    "poor": ("registered poor (建档立卡)", "建档立卡户"),
    "other": ("other households", "其他农户"),
    "all": ("all", "全部"),
    "households": ("households", "农户数"),
    "income_axis": ("income paid per household (yuan)", "每户已付收入（元）"),
    "paid": ("paid (yuan)", "已付（元）"),
    "min": ("min", "最低"),
    "median": ("median", "中位数"),
    "mean": ("mean", "平均"),
    "max": ("max", "最高"),
    "group": ("households", "农户"),
    "unpaid_poor": ("Registered-poor households without income ({n})", "尚无收入的建档立卡户（{n} 户）"),
    "household": ("household", "农户"),
    "cooperative": ("cooperative", "合作社"),
    "village": ("village", "村"),
    "township": ("township", "乡镇"),
    "county": ("county", "县"),
    "first_rows": (
        "the first {shown} of {n}; every one in {file} (--export)",
        "前 {shown} 项（共 {n} 项）；全部见 {file}（--export）",
    ),
    "coverage": ("Coverage of registered-poor households", "建档立卡贫困户产业收入覆盖"),
    "goal": (
        "Goal: every poor household has industry income (贫困户户户有产业收入). A bar per village: green with income, red without.",
        "目标：贫困户户户有产业收入。每个村一条：绿色为有收入，红色为无收入。",
    ),
    "by_village": ("By village ({n})", "按村（{n} 个）"),
    "by_county": ("By county", "按县"),
    "villages_chart": ("registered-poor households with and without income, by village", "各村建档立卡户有无产业收入"),
    "counties_chart": ("registered-poor households with and without income, by county", "各县建档立卡户有无产业收入"),
    "with_income": ("with income", "有收入"),
    "without_income": ("without income", "无收入"),
    "gap_villages": (
        "Villages with registered-poor households still without income: {n}",
        "仍有建档立卡户无产业收入的村：{n} 个",
    ),
    "registered_poor": ("registered poor", "建档立卡户"),
    "covered": ("covered", "覆盖率"),
    "poor_axis": ("registered-poor households", "建档立卡户数"),
    "plans": ("Plans beside actuals", "规划与实际"),
    "no_plans": ("The log holds no industry plan.", "日志中没有产业规划。"),
    "plans_area": ("Planned against planted area (mu)", "规划面积与种植面积（亩）"),
    "plans_income": ("Target against average household income (yuan)", "目标户均收入与实际户均收入（元）"),
    "planned": ("planned area", "规划面积"),
    "planted": ("planted area", "种植面积"),
    "target": ("target household income", "目标户均收入"),
    "average": ("average household income", "实际户均收入"),
    "plan": ("plan", "规划"),
    "earning": ("earning households", "有收入农户"),
    "per_household": ("yuan per household", "元/户"),
    "exports": ("Full ledgers", "完整台账"),
    "exports_note": (
        "The page holds summaries and top lists. Every fill, household, commitment, village and finding is written as CSV "
        "and JSON beside it by farmlink audit --report FILE --export DIR.",
        "本页只含汇总与排名。每笔成交、每户、每项承诺、每个村和每项问题的完整台账由 "
        "farmlink audit --report FILE --export DIR 写成 CSV 与 JSON 文件。",
    ),
    "no_data": ("no data", "无数据"),
    "and": (" and ", "、"),
    "counties_word": ("{names} counties", "{names}"),
    "county_word": ("{name} county", "{name}"),
}


def county_key(name: str) -> str:
    """ "Yanhe", "Yanhe (沿河)", "yanhe county" -> "yanhe"."""
    match = re.match(r"\s*([A-Za-z]+)", name)
    return match.group(1).lower() if match else name.strip()


class Words:
    """The words of one language."""

    def __init__(self, lang: str = "en"):
        if lang not in LANGS:
            raise ValueError(f"report language {lang!r}: expected one of {', '.join(LANGS)}")
        self.lang = lang
        self.zh = lang == "zh"

    def __call__(self, key: str, **values: object) -> str:
        en, zh = TEXT[key]
        return (zh if self.zh else en).format(**values)

    def word(self, name: str) -> str:
        """A unit, price basis, check or phase name in this language (as given when unknown)."""
        return WORDS_ZH.get(name, name) if self.zh else name

    def product(self, product: str) -> str:
        return PRODUCTS_ZH.get(product, product) if self.zh else product

    def county(self, name: str) -> str:
        """A county as the log names it; in Chinese its full name when known."""
        return COUNTIES_ZH.get(county_key(name), name) if self.zh else name

    def scope(self, counties: Sequence[str]) -> str:
        """The counties, named: "Yanhe county", "Yanhe and Yuping counties", "沿河土家族自治县、玉屏侗族自治县"."""
        names = [self.county(c) for c in counties]
        if self.zh:
            return "、".join(names)
        if len(names) == 1:
            return self("county_word", name=names[0])
        return self("counties_word", names=", ".join(names[:-1]) + " and " + names[-1])

    def title(self, counties: Sequence[str]) -> str:
        return self("title", scope=self.scope(counties)) if counties else self("title_none")
