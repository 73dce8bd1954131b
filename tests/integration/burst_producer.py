"""Record a burst of motion events into a kiosk's database from a second process.

Usage: burst_producer.py CONFIG DATA_DIR TOTAL. Each event goes through the agent's own alert
side (outbox row written in the caller's transaction); the running agent drains them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from agent.alerts.service import AlertService
from agent.config import load_config, with_overrides
from agent.store.database import Database
from agent.store.media import database_path
from tests.fixtures.mosquitto import RecordingTarget, Transition


def main() -> None:
    config_path, data_dir, total = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    config = with_overrides(load_config(config_path), data_dir=data_dir)
    database = Database(database_path(data_dir))
    alerts = AlertService(config, database, RecordingTarget(cameras=("gate",)))  # never started
    for number in range(total):
        now = time.time()
        transition = Transition("start", f"burst-{number:04d}", "gate", now, now)
        with database.write() as db:
            alerts.enqueue_event(db, transition)
        if number % 50 == 0:
            time.sleep(0.01)  # a burst, not one transaction: the agent drains meanwhile
    database.close()


if __name__ == "__main__":
    main()
