"""The use cases. Each public function is one unit of work: check, change, commit, announce."""
