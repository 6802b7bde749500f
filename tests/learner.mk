# Predictor and CLI tests (learner/, cli/).
