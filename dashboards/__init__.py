"""This product's dashboards and alarms as data, built with the awsblocks.observability builders."""
