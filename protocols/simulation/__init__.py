"""What the meter simulators of every protocol share: the household load model."""
