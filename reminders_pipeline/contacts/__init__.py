"""Contact registration paths and manual corrections of contact dates."""
