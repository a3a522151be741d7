"""plansync: declarative sync of 2C2P recurring payment plans."""
