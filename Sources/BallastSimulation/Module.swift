// Module BallastSimulation: see docs/architecture.md for its responsibility.
