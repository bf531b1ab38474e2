"""Pure domain rules of Gatehouse: standard library only, `now` always a parameter."""
