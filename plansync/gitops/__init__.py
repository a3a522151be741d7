"""The GitOps glue the workflows run, as code with tests rather than YAML scripts.

- ``github``: GitHub's REST API as it behaves (retries, rate limits, pagination, answers
  that are not GitHub's); the one place this package talks HTTP.
- ``records``: GitHub's JSON read into typed records at the edge.
- ``review``: the rules that decide which plan was reviewed for a merge (pure).
- ``fetch``: applying those rules to GitHub's answers, in order (``ci fetch-plan``).
- ``report``: what the pull request is told (``ci report``).
"""
