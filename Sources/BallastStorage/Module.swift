// Module BallastStorage: see docs/architecture.md for its responsibility.
