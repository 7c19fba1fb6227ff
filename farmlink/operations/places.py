"""The places, markets and products generated workloads draw from: one list, so a county, township, market or
product added for one generator is met by the others.

Used by the synthetic audit season (farmlink/operations/bench/synthetic.py), the chaos run's workload
(farmlink/operations/chaos/workload.py) and the end-to-end tests' random scenarios (tests/e2e/scenario_generator.py, which
keeps to a few products and adds livestock so its short scenarios make fills). Still apart: the matcher bench's
season (farmlink/operations/bench/matcher_bench.py: weighted products with base prices, a third county), whose measured
figures the docs quote, and the property tests' tiny alphabets (tests/unit/matcher_journals.py), chosen so that
random inputs meet.
"""

PRODUCTS = ("chili", "oil_tea_fruit", "sorghum", "tea_leaf", "black_fungus", "sweet_potato")
"""Products of the catalogue (contracts/catalogue.py) weighed in kg, in the order generators draw from."""
COUNTIES = {"Yanhe": ("Ketian", "Tangba", "Gongzhou", "Quanba"), "Yuping": ("Tianping", "Zhujiachang")}
"""Each county and its townships."""
MARKETS = ("Tongren", "Zunyi")
"""The markets whose price feeds report prices."""
