"""The core: pure diff, the planner that fans out inquiries, and the plan file."""
