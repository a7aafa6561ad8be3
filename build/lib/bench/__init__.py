"""HourglassBench: measurement, data, training and the grid runner."""
