"""Print the capacity planner's accuracy on the calibration corpus (real vLLM start-up logs).

    python benchmarks/calibration.py

One line per case (logged vs planned KV-cache GiB, the error, and whether the fit/no-fit
verdict matches the log), then the shares within ±15 % and of right verdicts. The corpus is
lib/vllmfleet/vllm/calibration/corpus.yaml; each case names its source.
"""

from __future__ import annotations

from vllmfleet.vllm import calibration


def main() -> None:
    print(calibration.format_results(calibration.evaluate(calibration.load())))


if __name__ == "__main__":
    main()
