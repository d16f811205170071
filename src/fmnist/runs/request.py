"""What `fmnist train` is asked to do, as one object the library can also rebuild from a run.

A fresh run takes its model, parameters and data choice from the command line; a resumed run
(`--resume RUN`) takes them from the run's own `run.json`, so it trains the same model on the
same data. Either way the data is chosen by one function (`load_data`: official splits or the
user's files, then the `--train-size` subset), so the CLI only parses options and prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmnist.errors import FmnistError

if TYPE_CHECKING:
    from fmnist.data.dataset import Dataset
    from fmnist.runs.train import RunResult

#: The data choices a run records (`data_args` in run.json) and their accepted JSON types.
DATA_ARGS: dict[str, tuple[type, ...]] = {
    "data": (str,), "test_data": (str,), "data_dir": (str,), "size": (int,),
    "train_size": (int,),
}


@dataclass
class TrainRequest:
    """One training run: model, parameters, seed, validation share and the data choice.

    `data_args` holds `data`, `test_data`, `data_dir` (paths or None), `size` and `train_size`
    exactly as `fmnist train` takes them; `run_dir` is set when the request resumes a run.
    """

    model: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    val_fraction: float | None = None
    data_args: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None

    @classmethod
    def resume(cls, run_dir: Path) -> TrainRequest:
        """The request recorded in `run_dir/run.json` (checked: the file is untrusted input)."""
        from fmnist.runs.train import read_run_request

        recorded = read_run_request(run_dir)
        data_args = recorded.get("data_args", {})
        for key, value in data_args.items():
            kinds = DATA_ARGS.get(key)
            if kinds is None or not (value is None or isinstance(value, kinds)) \
                    or isinstance(value, bool):
                raise FmnistError(f"{run_dir}: damaged run file (bad data_args {key!r}); "
                                  "cannot resume it — train afresh")
        return cls(model=recorded["model"], params=dict(recorded["params"]),
                   seed=recorded.get("seed", 0), val_fraction=recorded.get("val_fraction"),
                   data_args=dict(data_args), run_dir=Path(run_dir))

    def load_data(self) -> tuple[Dataset, Dataset, str]:
        """(train, test, description): the chosen data, cut to `train_size` when set."""
        from fmnist.data.resolve import resolve_data, training_subset

        args = self.data_args

        def path(key: str) -> Path | None:
            return Path(args[key]) if args.get(key) is not None else None

        train, test, description = resolve_data(path("data"), path("test_data"),
                                                path("data_dir"), args.get("size") or 28,
                                                self.seed)
        train, note = training_subset(train, args.get("train_size"), self.seed)
        return train, test, description + note

    def run(self, train: Dataset, test: Dataset, description: str,
            out_root: Path | str = "runs") -> RunResult:
        """Train (or continue) the run and save it (`fmnist.runs.train.train_run`)."""
        from fmnist.runs.train import train_run

        recorded = {k: str(v) if isinstance(v, Path) else v for k, v in self.data_args.items()}
        return train_run(self.model, self.params, train, test, out_root=out_root,
                         run_dir=self.run_dir, val_fraction=self.val_fraction, seed=self.seed,
                         resume=self.run_dir is not None, data_description=description,
                         data_args=recorded)
