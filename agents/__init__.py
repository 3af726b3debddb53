"""The agents: the Maestro (conductor), the Strategist and the Critic, and their providers."""
