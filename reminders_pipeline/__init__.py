"""Daily follow-up reminders for peer mentors."""
