"""This product on one machine: `make run`'s knobs and banner, `make demo`'s story, `make audit`."""
