// Module BallastEngine: see docs/architecture.md for its responsibility.
