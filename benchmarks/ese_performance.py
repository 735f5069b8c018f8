"""ESE performance figures (printed, not asserted): the digits LSTM on 8, 16 and 32 PEs.

The trained digits LSTM's matrices are pruned one-shot to 15 % (no retraining: the figures are about
the hardware, not accuracy), plain and load-balance-aware, shared and calibrated; 100 test sequences
run through the RTL. Per array: cycles per time step against the ideal, the gate products' load
balance and the measured MAC utilisation of the recurrent products (ESE's comparison), and the
overlapped schedule against the serial one. Every run is checked bit-exact against the golden model.

    .venv/bin/python benchmarks/ese_performance.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from eie.compress.digits_lstm import load_digit_sequences, train_default_lstm
from eie.compress.lstm import calibrate_lstm, run_lstm_pipeline
from eie.compress.lstm_io import read_lstm_model
from eie.compress.pipeline import CompressOptions
from eie.lstm_flow import digits_lstm_config, rtl_report, run_lstm_rtl
from eie.spec.ese_image import load_lstm_images, write_lstm_images
from eie.spec.numerics import quantize_input

console = Console(highlight=False, width=140)


def images_for(root: Path, spec, data, config, balance):
    options = CompressOptions(densities=(0.15,), balance_pes=balance, prune_steps=1, retrain_epochs=0,
                              finetune_epochs=0)
    result = run_lstm_pipeline(spec, data, options)
    net, reference = calibrate_lstm(result.shared, data.x_train.numpy().astype(np.float64), config)
    name = f"n{config.n_pe}-{'balanced' if balance else 'plain'}"
    return load_lstm_images(write_lstm_images(net, config, root / name, reference=reference))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 PEs only")
    args = parser.parse_args()
    data = load_digit_sequences(0)
    spec = read_lstm_model(train_default_lstm(0, data))
    table = Table(title="digits LSTM, gate matrices at 15 % (one-shot), 100 test sequences through the RTL")
    for col in ("PEs", "pruning", "schedule", "cycles/step", "ideal", "ideal/cycles", "gate balance",
                "MAC util. (h products)", "MAC util. (recurrence)"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory(prefix="ese-bench-") as tmp:
        for n_pe in (8,) if args.quick else (8, 16, 32):
            config = digits_lstm_config(n_pe=n_pe)
            for balance in (None, n_pe):
                images = images_for(Path(tmp), spec, data, config, balance)
                x = quantize_input(data.x_test.numpy()[:100], images.input_frac_bits, config.act_bits)
                for overlap in ((True, False) if balance and n_pe == 8 else (True,)):
                    run = run_lstm_rtl(images, x, overlap=overlap)
                    if not run.bit_exact:
                        raise SystemExit(f"RTL differs from the golden model on {n_pe} PEs: benchmark aborted")
                    r = rtl_report(images, run)
                    u = r["utilisation"]
                    table.add_row(str(n_pe), "load-balance-aware" if balance else "plain", r["schedule"],
                                  f"{r['cycles_per_step']:.1f}", f"{r['ideal_per_step']:.1f}",
                                  f"{r['ideal_over_cycles']:.2f}", f"{u['gate_balance']:.3f}",
                                  f"{u['mac_h_products']:.3f}", f"{u['mac_recurrent']:.3f}")
                    console.print(f"{n_pe} PEs, {'balanced' if balance else 'plain'}, {r['schedule']}: "
                                  f"{r['cycles_per_step']:.1f} cycles per step, bit-exact")
    console.print(table)


if __name__ == "__main__":
    main()
