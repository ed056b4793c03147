"""Running a pool: the scheduler and sweeper, Prometheus metrics, Flower, logging."""
