# Seed 004 (AnythingAgent's model-deployment guide), lines 220-245 ("流式响应实现"): the seed shows
# on_chat_messages without its class, so the imports and the class line are added and the method,
# as written, is indented into the class. Nothing else differs.
import asyncio
from typing import AsyncGenerator, Dict, List

from app.models.base import AnythingBaseModel


class StreamingModel(AnythingBaseModel):
    async def on_chat_messages(
        self,
        messages: List[Dict[str, str]]
    ) -> AsyncGenerator[str, None]:
        """
        处理聊天消息并返回流式响应
        
        Args:
            messages: 消息列表，每个消息是包含role和content的字典
            
        Yields:
            str: 响应的各个部分
        """
        # 处理用户消息
        last_message = messages[-1]["content"]
        
        # 生成多个部分的响应
        yield f"收到消息：{last_message}\n"
        yield "正在处理...\n"
        
        # 可以在处理过程中执行其他异步操作
        await asyncio.sleep(1)
        
        yield "处理完成！"
