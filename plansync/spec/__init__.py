"""Specs: YAML files that declare the desired state of plans, validated into DesiredPlans."""
