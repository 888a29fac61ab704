"""What models of one kind share (mixins): language modelling and translation steps, losses, metrics, text in and out."""
