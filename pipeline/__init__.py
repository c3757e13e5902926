"""The KFP v2 training pipeline: fetch, validate ∥ preprocess, train, evaluate ∥ convert, verify,
publish.

- `steps/`: what each step decides, in plain typed Python without KFP (tested directly);
- `components/`: thin `@dsl.component` shims over the steps;
- `definition.py`: the wiring (`training_pipeline`); `config.py`: image and cluster settings;
- `local.py` and `cli.py`: `python -m pipeline compile | run --local | demo-data`.
"""
