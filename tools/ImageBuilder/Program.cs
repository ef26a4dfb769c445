using ImageBuilder.Cli;

return BuilderCommands.CreateRoot().Parse(args).Invoke();
