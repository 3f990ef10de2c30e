"""Running clients through scenarios on a lab and judging every cell."""
